/* gpu-rows-impl.h: causal attention one row at a time, for the element type CPG_T (loaded and
 * stored through CPG_LD / CPG_ST, computed in fp32): included by gpu-math.h once for float and
 * once for bf16. No include guard on purpose.
 *
 * The forward pass is flash-style: one pass over the keys with an online softmax, keeping only
 * the output row and its logsumexp, so memory is linear in T. The backward pass recomputes each
 * probability from the logsumexp: the query side (dq) walks the keys of its row, the key side
 * (dk, dv) walks the queries that see its key, and neither needs the other's result, so the
 * GPU runs both in one launch with no atomics. Pointers are at the head's first element: Q, K,
 * V rows lie QS elements apart (3C in the qkv activation), OUT and DOUT rows OS apart (C). */

/* out = softmax(q k^T * scale) v over the N keys (the causal prefix); *LSE its logsumexp */
CP_HD static inline void CPG_NAME(attn_fwd_row)(CPG_T *out, float *lse, const CPG_T *q,
						const CPG_T *k, const CPG_T *v, uint64_t qs,
						int n, int hs, float scale)
{
	float qf[CPG_MAX_HS], acc[CPG_MAX_HS];
	for (int i = 0; i < hs; i++) {
		qf[i] = CPG_LD(q[i]);
		acc[i] = 0.0f;
	}
	float m = -INFINITY, l = 0.0f;
	for (int u = 0; u < n; u++) {
		const CPG_T *ku = k + (uint64_t)u * qs, *vu = v + (uint64_t)u * qs;
		float s = 0.0f;
		for (int i = 0; i < hs; i++)
			s += qf[i] * CPG_LD(ku[i]);
		s *= scale;
		if (s > m) {
			float c = expf(m - s);
			l *= c;
			for (int i = 0; i < hs; i++)
				acc[i] *= c;
			m = s;
		}
		float p = expf(s - m);
		l += p;
		for (int i = 0; i < hs; i++)
			acc[i] += p * CPG_LD(vu[i]);
	}
	float inv = 1.0f / l;
	for (int i = 0; i < hs; i++)
		out[i] = CPG_ST(acc[i] * inv);
	*lse = m + logf(l);
}

/* dq of one query row (overwritten), from its output row OUT, output gradient DOUT and LSE */
CP_HD static inline void CPG_NAME(attn_bwd_q_row)(CPG_T *dq, const CPG_T *q, const CPG_T *k,
						  const CPG_T *v, uint64_t qs, const CPG_T *out,
						  const CPG_T *dout, float lse, int n, int hs,
						  float scale)
{
	float qf[CPG_MAX_HS], df[CPG_MAX_HS], acc[CPG_MAX_HS];
	float D = 0.0f;
	for (int i = 0; i < hs; i++) {
		qf[i] = CPG_LD(q[i]);
		df[i] = CPG_LD(dout[i]);
		D += df[i] * CPG_LD(out[i]);
		acc[i] = 0.0f;
	}
	for (int u = 0; u < n; u++) {
		const CPG_T *ku = k + (uint64_t)u * qs, *vu = v + (uint64_t)u * qs;
		float s = 0.0f, dp = 0.0f;
		for (int i = 0; i < hs; i++) {
			s += qf[i] * CPG_LD(ku[i]);
			dp += df[i] * CPG_LD(vu[i]);
		}
		float g = expf(s * scale - lse) * (dp - D) * scale;
		for (int i = 0; i < hs; i++)
			acc[i] += g * CPG_LD(ku[i]);
	}
	for (int i = 0; i < hs; i++)
		dq[i] = CPG_ST(acc[i]);
}

/* dk and dv of key row U (overwritten), from the N - U query rows U..N-1 that attend to it:
 * Q, OUT and DOUT point at row 0 of the sequence, LSE at its row 0's logsumexp */
CP_HD static inline void CPG_NAME(attn_bwd_kv_row)(CPG_T *dk, CPG_T *dv, const CPG_T *q,
						   const CPG_T *ku, const CPG_T *vu, uint64_t qs,
						   const CPG_T *out, const CPG_T *dout, uint64_t os,
						   const float *lse, int u, int n, int hs,
						   float scale)
{
	float kf[CPG_MAX_HS], vf[CPG_MAX_HS], dkf[CPG_MAX_HS], dvf[CPG_MAX_HS];
	for (int i = 0; i < hs; i++) {
		kf[i] = CPG_LD(ku[i]);
		vf[i] = CPG_LD(vu[i]);
		dkf[i] = dvf[i] = 0.0f;
	}
	for (int t = u; t < n; t++) {
		const CPG_T *qt = q + (uint64_t)t * qs;
		const CPG_T *ot = out + (uint64_t)t * os, *dt = dout + (uint64_t)t * os;
		float s = 0.0f, dp = 0.0f, D = 0.0f;
		for (int i = 0; i < hs; i++) {
			float d = CPG_LD(dt[i]);
			s += CPG_LD(qt[i]) * kf[i];
			dp += d * vf[i];
			D += d * CPG_LD(ot[i]);
		}
		float p = expf(s * scale - lse[t]);
		float g = p * (dp - D) * scale;
		for (int i = 0; i < hs; i++) {
			dvf[i] += p * CPG_LD(dt[i]);
			dkf[i] += g * CPG_LD(qt[i]);
		}
	}
	for (int i = 0; i < hs; i++) {
		dk[i] = CPG_ST(dkf[i]);
		dv[i] = CPG_ST(dvf[i]);
	}
}

/* ---- generation: one query against a row's key/value cache (gpu/infer.cu) ----
 * The cache holds a row's keys (and apart its values) of one head as rows HS elements apart
 * (model/gpu-infer.h). The kernel gives each (token, head) a block: its threads score the keys
 * with kv_score, take the scores' max and the sum of their exps in a tree, then add the
 * weighted values; kv_attn_row is the same arithmetic on one thread, which the host tests run
 * against the CPU backend's attention. */

/* the scaled score of key K for query Q */
CP_HD static inline float CPG_NAME(kv_score)(const CPG_T *q, const CPG_T *k, int hs, float scale)
{
	float s = 0.0f;
	for (int i = 0; i < hs; i++)
		s += CPG_LD(q[i]) * CPG_LD(k[i]);
	return s * scale;
}

/* out = softmax(q k^T * scale) v over the N cached keys; A: scratch of N floats */
CP_HD static inline void CPG_NAME(kv_attn_row)(CPG_T *out, float *a, const CPG_T *q,
					       const CPG_T *k, const CPG_T *v, int n, int hs,
					       float scale)
{
	float mx = -INFINITY, sum = 0.0f;
	for (int u = 0; u < n; u++) {
		a[u] = CPG_NAME(kv_score)(q, k + (uint64_t)u * hs, hs, scale);
		mx = a[u] > mx ? a[u] : mx;
	}
	for (int u = 0; u < n; u++) {
		a[u] = expf(a[u] - mx);
		sum += a[u];
	}
	float inv = 1.0f / sum;
	for (int i = 0; i < hs; i++) {
		float acc = 0.0f;
		for (int u = 0; u < n; u++)
			acc += a[u] * inv * CPG_LD(v[(uint64_t)u * hs + i]);
		out[i] = CPG_ST(acc);
	}
}
