// Native CPU kernels for @diff-instruct/native: single-precision GEMM (OpenBLAS when it was found
// at build time, a blocked built-in GEMM otherwise) and NHWC convolution: a register-blocked direct
// kernel when C_out is a multiple of 16 (every 3×3 conv of the UNets), im2col + GEMM otherwise.
// Every entry point takes Float32Arrays (views into the tfjs wasm heap, or plain arrays), checks
// that each access stays inside them, and never allocates JS objects in its inner loops.
#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if DI_USE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);
#endif

namespace {

int g_threads = 1;
bool g_use_builtin = false;  // tests compare both GEMMs
bool g_use_builtin_conv = false;  // im2col + GEMM instead of the direct kernel
thread_local bool t_worker = false;  // inside one of our worker threads: no nested threads

// A persistent pool of worker threads. A parallel call cuts its range into chunks that the calling
// thread and the workers take in turn from one shared counter, so a worker that wakes late only
// takes fewer chunks (the caller never idles waiting for it). Workers spin for about a millisecond
// after a job (the next kernel usually follows within tens of microseconds of JavaScript) and then
// sleep on a condition variable, so an idle pool costs nothing. Starting threads per call, as before,
// cost 50–100 µs per call, as much as the small kernels of the MNIST UNets take. The pool is never
// destroyed (its threads are detached), so nothing of it runs at exit.
class Pool {
 public:
  // Runs fn(ctx, chunk) for every chunk in [0, chunks); returns when all are done. One caller at a
  // time: a second JS thread (worker_threads) that finds the pool busy runs its chunks inline.
  void run(int chunks, int workers, void (*fn)(void*, int), void* ctx) {
    if (busy_.exchange(true, std::memory_order_acquire)) {
      for (int c = 0; c < chunks; ++c) fn(ctx, c);
      return;
    }
    ensure(workers);
    uint64_t gen;
    {
      // the job and its generation are published together; a worker reads them together
      std::lock_guard<std::mutex> lock(mu_);
      gen = (generation_.load(std::memory_order_relaxed) + 1) & 0xffffffffu;
      fn_ = fn;
      ctx_ = ctx;
      chunks_ = chunks;
      workers_ = workers;
      done_.store(0, std::memory_order_relaxed);
      next_.store(gen << 32, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    t_worker = true;  // the caller's chunks run their inner kernels inline, as the workers do
    work(gen, fn, ctx, chunks);
    t_worker = false;
    while (done_.load(std::memory_order_acquire) < chunks) pause();
    busy_.store(false, std::memory_order_release);
  }

 private:
  static inline void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  // Takes chunks of job `gen` until none is left (or the job is no longer the current one).
  void work(uint64_t gen, void (*fn)(void*, int), void* ctx, int chunks) {
    int finished = 0;
    uint64_t v = next_.load(std::memory_order_acquire);
    for (;;) {
      if ((v >> 32) != gen || (int64_t)(v & 0xffffffffu) >= chunks) break;
      if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      fn(ctx, (int)(v & 0xffffffffu));
      ++finished;
      v = next_.load(std::memory_order_acquire);
    }
    if (finished > 0) done_.fetch_add(finished, std::memory_order_acq_rel);
  }

  void ensure(int workers) {
    while ((int)count_ < workers) {
      // the generation before this call's job: a thread that starts late still sees the job as new
      const uint64_t seen = generation_.load(std::memory_order_acquire);
      const int index = (int)count_ + 1;
      std::thread([this, index, seen] { loop(index, seen); }).detach();
      ++count_;
    }
  }

  // Worker `index` (1, 2, …) takes part in a job only when the job asked for at least that many
  // workers, so that fewer threads than were ever started run after setThreads lowers the count.
  void loop(int index, uint64_t seen) {
    t_worker = true;
    for (;;) {
      auto start = std::chrono::steady_clock::now();
      for (int i = 0;; ++i) {
        if (generation_.load(std::memory_order_acquire) != seen) break;
        pause();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(1000)) {
          std::unique_lock<std::mutex> lock(mu_);
          sleeping_.fetch_add(1, std::memory_order_acq_rel);
          cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          sleeping_.fetch_sub(1, std::memory_order_acq_rel);
          start = std::chrono::steady_clock::now();
        }
      }
      void (*fn)(void*, int);
      void* ctx;
      int chunks, workers;
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen = generation_.load(std::memory_order_acquire);
        fn = fn_;
        ctx = ctx_;
        chunks = chunks_;
        workers = workers_;
      }
      if (index <= workers) work(seen, fn, ctx, chunks);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_{0};  // generation << 32 | the next chunk to take
  std::atomic<int> done_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> busy_{false};
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int chunks_ = 0;
  int workers_ = 0;
  unsigned count_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its detached threads may outlive static destructors
  return *p;
}

// f(begin, end) over [0, total) on `threads` threads: inline for one thread (or inside a worker),
// else in up to 4·threads contiguous chunks on the pool, all done before it returns.
template <class F>
void split_range(int64_t total, int threads, F f) {
  if (threads <= 1 || t_worker || total <= 1) {
    f(int64_t{0}, total);
    return;
  }
  const int chunks = (int)std::min<int64_t>(total, 4 * threads);
  struct Ctx {
    F* f;
    int64_t total;
    int chunks;
  } ctx{&f, total, chunks};
  pool().run(chunks, threads - 1, [](void* c, int chunk) {
    auto* x = static_cast<Ctx*>(c);
    (*x->f)(x->total * chunk / x->chunks, x->total * (chunk + 1) / x->chunks);
  }, &ctx);
}

// ---------------------------------------------------------------------------------------------
// Built-in GEMM: C[M×N] = op(A)·op(B) (+ C when accumulate), row-major. op(X) is packed into a
// plain row-major copy first, then an i-k-j loop over cache blocks; the j loop vectorises
// (-O3 -march=native). Rows of C are split across threads.
// ---------------------------------------------------------------------------------------------
void gemm_rows(int m0, int m1, int N, int K, const float* A, const float* B, float* C, bool accumulate) {
  constexpr int KB = 256, NB = 512;
  if (!accumulate) for (int i = m0; i < m1; ++i) std::memset(C + (size_t)i * N, 0, sizeof(float) * N);
  for (int k0 = 0; k0 < K; k0 += KB) {
    const int k1 = std::min(K, k0 + KB);
    for (int j0 = 0; j0 < N; j0 += NB) {
      const int j1 = std::min(N, j0 + NB);
      for (int i = m0; i < m1; ++i) {
        float* __restrict c = C + (size_t)i * N;
        const float* a = A + (size_t)i * K;
        for (int k = k0; k < k1; ++k) {
          const float aik = a[k];
          const float* __restrict b = B + (size_t)k * N;
          for (int j = j0; j < j1; ++j) c[j] += aik * b[j];
        }
      }
    }
  }
}

void builtin_gemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool accumulate) {
  // pack op(A) [M×K] and op(B) [K×N] contiguously
  std::vector<float> pa, pb, pc;
  const float* a = A;
  if (ta || lda != K) {
    pa.resize((size_t)M * K);
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < K; ++k) pa[(size_t)i * K + k] = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
    a = pa.data();
  }
  const float* b = B;
  if (tb || ldb != N) {
    pb.resize((size_t)K * N);
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < N; ++j) pb[(size_t)k * N + j] = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
    b = pb.data();
  }
  float* c = C;
  if (ldc != N) {
    pc.resize((size_t)M * N);
    if (accumulate)
      for (int i = 0; i < M; ++i) std::memcpy(pc.data() + (size_t)i * N, C + (size_t)i * ldc, sizeof(float) * N);
    c = pc.data();
  }
  const double flops = 2.0 * M * N * K;
  const int threads = t_worker || flops < 3e7 ? 1 : std::max(1, std::min(g_threads, M));
  split_range(M, threads, [=](int64_t m0, int64_t m1) { gemm_rows((int)m0, (int)m1, N, K, a, b, c, accumulate); });
  if (ldc != N)
    for (int i = 0; i < M; ++i) std::memcpy(C + (size_t)i * ldc, c + (size_t)i * N, sizeof(float) * N);
}

void gemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int i = 0; i < M; ++i) std::memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
    return;
  }
#if DI_USE_OPENBLAS
  if (!g_use_builtin) {
    // OpenBLAS runs single-threaded (its own threads spin while they wait, which collapses under a
    // loaded machine); large products are split by rows of C over our threads instead.
    const int threads = t_worker || 2.0 * M * N * K < 3e7 ? 1 : std::max(1, std::min(g_threads, M / 16));
    split_range(M, threads, [=](int64_t m0, int64_t m1) {
      const float* a = ta ? A + m0 : A + (size_t)m0 * lda;
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)(m1 - m0), N, K, 1.0f, a, lda, B, ldb,
                  accumulate ? 1.0f : 0.0f, C + (size_t)m0 * ldc, ldc);
    });
    return;
  }
#endif
  builtin_gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

// ---------------------------------------------------------------------------------------------
// N-API helpers
// ---------------------------------------------------------------------------------------------
struct F32 {
  float* data = nullptr;
  size_t length = 0;
};

napi_value throw_error(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

bool get_f32(napi_env env, napi_value v, F32* out, const char* what) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) {
    throw_error(env, std::string("@diff-instruct/native: ") + what + " must be a Float32Array");
    return false;
  }
  napi_typedarray_type type;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  napi_get_typedarray_info(env, v, &type, &out->length, &data, &ab, &offset);
  if (type != napi_float32_array) {
    throw_error(env, std::string("@diff-instruct/native: ") + what + " must be a Float32Array");
    return false;
  }
  out->data = static_cast<float*>(data);
  return true;
}

bool get_int(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

// The first n integers of a JS array (a shape or a geometry) into dst.
bool get_ints(napi_env env, napi_value arr, int64_t* dst, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || !get_int(env, e, &dst[i])) return false;
  }
  return true;
}

bool is_null(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

#define ARGS(n)                                                  \
  size_t argc = n;                                               \
  napi_value argv[n];                                            \
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);    \
  if (argc < n) return throw_error(env, "@diff-instruct/native: expected " #n " arguments");

#define INTS(first, count, arr)                                                          \
  int64_t arr[count];                                                                     \
  for (int i_ = 0; i_ < count; ++i_)                                                      \
    if (!get_int(env, argv[first + i_], &arr[i_]) || arr[i_] < 0)                         \
      return throw_error(env, "@diff-instruct/native: expected non-negative integer sizes");

// gemmBatched(batch, transA, transB, M, N, K, A, strideA, B, strideB, C, strideC)
// C_b = op(A_b)·op(B_b) for b < batch, with A_b = A + b·strideA (strideA 0 broadcasts), row-major,
// op(A) [M×K], op(B) [K×N].
napi_value GemmBatched(napi_env env, napi_callback_info info) {
  ARGS(12)
  int64_t batch;
  bool ta, tb;
  if (!get_int(env, argv[0], &batch) || batch < 0) return throw_error(env, "@diff-instruct/native: bad batch");
  napi_get_value_bool(env, argv[1], &ta);
  napi_get_value_bool(env, argv[2], &tb);
  INTS(3, 3, mnk)
  F32 A, B, C;
  int64_t sa, sb, sc;
  if (!get_f32(env, argv[6], &A, "A") || !get_int(env, argv[7], &sa) || !get_f32(env, argv[8], &B, "B") || !get_int(env, argv[9], &sb) ||
      !get_f32(env, argv[10], &C, "C") || !get_int(env, argv[11], &sc))
    return nullptr;
  const int64_t M = mnk[0], N = mnk[1], K = mnk[2];
  auto fits = [&](size_t len, int64_t stride, int64_t size) { return batch == 0 || (size_t)((batch - 1) * stride + size) <= len; };
  if (!fits(A.length, sa, M * K) || !fits(B.length, sb, K * N) || !fits(C.length, sc, M * N))
    return throw_error(env, "@diff-instruct/native: gemmBatched: an operand is smaller than its sizes and strides say");
  for (int64_t b = 0; b < batch; ++b)
    gemm(ta, tb, (int)M, (int)N, (int)K, A.data + b * sa, ta ? (int)M : (int)K, B.data + b * sb, tb ? (int)K : (int)N, C.data + b * sc, (int)N,
         false);
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Direct convolution for C_out a multiple of 16: the input is copied once into a zero-padded
// buffer, then each block of PB output pixels of one output row keeps PB 16-wide accumulators in
// registers while it walks (ky, kx, ci): one filter vector load and PB broadcast FMAs per step
// (for C_out a multiple of 32, two filter vectors and 2·PB FMAs per broadcast input value).
// GCC's vector extension compiles the v16 arithmetic to AVX-512 (or pairs of AVX2 registers).
// ---------------------------------------------------------------------------------------------
typedef float v16 __attribute__((vector_size(64)));

static inline v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

struct DirectGeom {
  const float* xp;  // padded input [n, hp, wp, c]
  const float* f;   // [kh, kw, c, co]
  const float* bias;
  float* y;         // [n, ho, wo, co]
  int64_t hp, wp, c, kh, kw, co, sh, sw, ho, wo;
};

template <int PB>
static void direct_block(const DirectGeom& g, int64_t n, int64_t oy, int64_t ox0) {
  const int64_t c = g.c, co = g.co;
  for (int64_t cb = 0; cb < co; cb += 16) {
    v16 acc[PB];
    const v16 b0 = g.bias ? load16(g.bias + cb) : v16{};
    for (int p = 0; p < PB; ++p) acc[p] = b0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const float* row = g.xp + ((n * g.hp + oy * g.sh + ky) * g.wp) * c;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const float* xin = row + (ox0 * g.sw + kx) * c;
        const float* wk = g.f + ((ky * g.kw + kx) * c) * co + cb;
        for (int64_t ci = 0; ci < c; ++ci) {
          const v16 wv = load16(wk + ci * co);
          for (int p = 0; p < PB; ++p) acc[p] += xin[p * g.sw * c + ci] * wv;
        }
      }
    }
    float* out = g.y + ((n * g.ho + oy) * g.wo + ox0) * co + cb;
    for (int p = 0; p < PB; ++p) store16(out + p * co, acc[p]);
  }
}

// As direct_block, for two blocks of 16 output channels at once (cb, cb + 16): each broadcast input
// value feeds two FMAs, and 2·PB accumulators hide the FMA latency better than PB.
template <int PB>
static void direct_block2(const DirectGeom& g, int64_t n, int64_t oy, int64_t ox0) {
  const int64_t c = g.c, co = g.co;
  for (int64_t cb = 0; cb < co; cb += 32) {
    v16 acc0[PB], acc1[PB];
    const v16 b0 = g.bias ? load16(g.bias + cb) : v16{};
    const v16 b1 = g.bias ? load16(g.bias + cb + 16) : v16{};
    for (int p = 0; p < PB; ++p) {
      acc0[p] = b0;
      acc1[p] = b1;
    }
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const float* row = g.xp + ((n * g.hp + oy * g.sh + ky) * g.wp) * c;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const float* xin = row + (ox0 * g.sw + kx) * c;
        const float* wk = g.f + ((ky * g.kw + kx) * c) * co + cb;
        for (int64_t ci = 0; ci < c; ++ci) {
          const v16 w0 = load16(wk + ci * co), w1 = load16(wk + ci * co + 16);
          for (int p = 0; p < PB; ++p) {
            const float xv = xin[p * g.sw * c + ci];
            acc0[p] += xv * w0;
            acc1[p] += xv * w1;
          }
        }
      }
    }
    float* out = g.y + ((n * g.ho + oy) * g.wo + ox0) * co + cb;
    for (int p = 0; p < PB; ++p) {
      store16(out + p * co, acc0[p]);
      store16(out + p * co + 16, acc1[p]);
    }
  }
}

static void direct_rows(const DirectGeom& g, int64_t r0, int64_t r1) {
  if (g.co % 32 == 0) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.ho, oy = r % g.ho;
      int64_t ox = 0;
      for (; ox + 8 <= g.wo; ox += 8) direct_block2<8>(g, n, oy, ox);
      for (; ox + 4 <= g.wo; ox += 4) direct_block2<4>(g, n, oy, ox);
      for (; ox + 2 <= g.wo; ox += 2) direct_block2<2>(g, n, oy, ox);
      for (; ox < g.wo; ++ox) direct_block2<1>(g, n, oy, ox);
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.ho, oy = r % g.ho;
    int64_t ox = 0;
    for (; ox + 8 <= g.wo; ox += 8) direct_block<8>(g, n, oy, ox);
    for (; ox + 4 <= g.wo; ox += 4) direct_block<4>(g, n, oy, ox);
    for (; ox + 2 <= g.wo; ox += 2) direct_block<2>(g, n, oy, ox);
    for (; ox < g.wo; ++ox) direct_block<1>(g, n, oy, ox);
  }
}

// y = conv(x, f) + bias by the direct kernel; the caller checked co % 16 == 0.
static void conv_direct(const float* x, int64_t n, int64_t h, int64_t w, int64_t c, const float* f, int64_t kh, int64_t kw, int64_t co,
                        int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t ho, int64_t wo, const float* bias, float* y) {
  const int64_t hp = (ho - 1) * sh + kh, wp = (wo - 1) * sw + kw;
  const int64_t rows = n * ho;
  const int threads = 2.0 * rows * wo * kh * kw * c * co < 3e7 ? 1 : (int)std::max<int64_t>(1, std::min<int64_t>(g_threads, rows));
  // The padded input lives in a buffer kept between calls (a fresh one costs a page fault per 4 KiB
  // and a zero fill of all of it); each padded row is written whole, its padding zeroed, on every
  // thread. Only the JavaScript thread calls this, so one buffer is enough.
  static std::vector<float> pad_buffer;
  const size_t need = (size_t)(n * hp * wp * c);
  if (pad_buffer.size() < need) pad_buffer.resize(need);
  float* xp = pad_buffer.data();
  const int64_t ix0 = std::max<int64_t>(0, -pl), ix1 = std::min<int64_t>(w, wp - pl);
  split_range(n * hp, threads == 1 || need < (size_t{1} << 18) ? 1 : threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / hp, py = r % hp, iy = py - pt;
      float* dst = xp + r * wp * c;
      if (iy < 0 || iy >= h || ix1 <= ix0) {
        std::memset(dst, 0, sizeof(float) * wp * c);
        continue;
      }
      const int64_t left = ix0 + pl, right = ix1 + pl;  // [left, right) holds x's columns ix0…ix1
      std::memset(dst, 0, sizeof(float) * left * c);
      std::memcpy(dst + left * c, x + ((b * h + iy) * w + ix0) * c, sizeof(float) * (right - left) * c);
      std::memset(dst + right * c, 0, sizeof(float) * (wp - right) * c);
    }
  });
  DirectGeom g{xp, f, bias, y, hp, wp, c, kh, kw, co, sh, sw, ho, wo};
  split_range(rows, threads, [&g](int64_t r0, int64_t r1) { direct_rows(g, r0, r1); });
}

struct ConvGeom {
  const float* x;
  const float* f;
  float* y;
  int64_t h, w, c, kh, kw, co, sh, sw, pt, pl, ho, wo;
};

// im2col of images [b0, b0 + nb) into col [(nb·ho·wo) × (kh·kw·c)], then y = col·filter.
void conv_chunk(const ConvGeom& g, int64_t b0, int64_t nb, float* col) {
  const int64_t K = g.kh * g.kw * g.c, c = g.c, kw = g.kw;
  for (int64_t b = 0; b < nb; ++b) {
    const float* img = g.x + (b0 + b) * g.h * g.w * c;
    for (int64_t oy = 0; oy < g.ho; ++oy)
      for (int64_t ox = 0; ox < g.wo; ++ox) {
        float* row = col + ((b * g.ho + oy) * g.wo + ox) * K;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.sh + ky - g.pt;
          float* dst = row + ky * kw * c;
          if (iy < 0 || iy >= g.h) {
            std::memset(dst, 0, sizeof(float) * kw * c);
            continue;
          }
          const int64_t ix0 = ox * g.sw - g.pl;
          if (ix0 >= 0 && ix0 + kw <= g.w) {
            std::memcpy(dst, img + (iy * g.w + ix0) * c, sizeof(float) * kw * c);
          } else {
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ix0 + kx;
              if (ix < 0 || ix >= g.w) std::memset(dst + kx * c, 0, sizeof(float) * c);
              else std::memcpy(dst + kx * c, img + (iy * g.w + ix) * c, sizeof(float) * c);
            }
          }
        }
      }
  }
  const int64_t rows = nb * g.ho * g.wo;
  gemm(false, false, (int)rows, (int)g.co, (int)K, col, (int)K, g.f, (int)g.co, g.y + b0 * g.ho * g.wo * g.co, (int)g.co, false);
}

// conv2d(x, [n, h, w, c], filter, [kh, kw, co], [strideH, strideW, padTop, padLeft, outH, outW], bias | null, out)
// NHWC input, HWIO filter (row-major [kh·kw·c, co]), out [n, outH, outW, co]; pixels outside the
// input read as zero. A 1×1 stride-1 conv is one GEMM; C_out a multiple of 16 takes the direct
// kernel; anything else im2col by chunks of images, then one GEMM per chunk.
napi_value Conv2d(napi_env env, napi_callback_info info) {
  ARGS(7)
  F32 x, f, out, bias;
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[2], &f, "filter") || !get_f32(env, argv[6], &out, "out")) return nullptr;
  const bool has_bias = !is_null(env, argv[5]);
  if (has_bias && !get_f32(env, argv[5], &bias, "bias")) return nullptr;
  int64_t xs[4], fs[3], geo[6];
  if (!get_ints(env, argv[1], xs, 4) || !get_ints(env, argv[3], fs, 3) || !get_ints(env, argv[4], geo, 6))
    return throw_error(env, "@diff-instruct/native: conv2d: bad shape arrays");
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3], kh = fs[0], kw = fs[1], co = fs[2];
  const int64_t sh = geo[0], sw = geo[1], pt = geo[2], pl = geo[3], ho = geo[4], wo = geo[5];
  if (sh < 1 || sw < 1 || n < 0 || h < 0 || w < 0 || c < 1 || kh < 1 || kw < 1 || co < 1)
    return throw_error(env, "@diff-instruct/native: conv2d: bad sizes");
  if ((size_t)(n * h * w * c) > x.length || (size_t)(kh * kw * c * co) > f.length || (size_t)(n * ho * wo * co) > out.length ||
      (has_bias && (size_t)co > bias.length))
    return throw_error(env, "@diff-instruct/native: conv2d: an operand is smaller than its shape says");
  const int64_t K = kh * kw * c;
  const int64_t pix = ho * wo;
  float* y = out.data;
  const bool pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && ho == h && wo == w;
  if (co % 16 == 0 && !g_use_builtin_conv && !pointwise) {
    conv_direct(x.data, n, h, w, c, f.data, kh, kw, co, sh, sw, pt, pl, ho, wo, has_bias ? bias.data : nullptr, y);
    return nullptr;
  }
  if (pointwise) {
    gemm(false, false, (int)(n * pix), (int)co, (int)K, x.data, (int)K, f.data, (int)co, y, (int)co, false);
  } else {
    // Chunks of images whose columns fit in L2 (about 512 KiB), spread over the threads; each
    // thread builds its chunk's columns and runs a single-threaded GEMM on them.
    const int64_t per_image = std::max<int64_t>(1, pix * K);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t)(128 << 10) / per_image));
    const int64_t chunks = (n + chunk - 1) / chunk;
    const int threads = (int)std::max<int64_t>(1, std::min<int64_t>(g_threads, chunks));
    ConvGeom g{x.data, f.data, y, h, w, c, kh, kw, co, sh, sw, pt, pl, ho, wo};
    split_range(chunks, threads, [&](int64_t c0, int64_t c1) {
      std::vector<float> col((size_t)(chunk * pix * K));
      for (int64_t ci = c0; ci < c1; ++ci) {
        const int64_t b0 = ci * chunk, nb = std::min(chunk, n - b0);
        conv_chunk(g, b0, nb, col.data());
      }
    });
  }
  if (has_bias) {
    const int64_t rows = n * pix;
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + r * co;
      for (int64_t j = 0; j < co; ++j) yr[j] += bias.data[j];
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Filter gradient of a convolution: dW[ky, kx, ci, co] = Σ_{n, oy, ox} x_pad[n, oy·sh + ky,
// ox·sw + kx, ci] · dy[n, oy, ox, co]. For each tap (ky, kx) and block of CIB input channels, CIB × 16
// accumulators stay in registers while the loop walks a row of output pixels: one dy vector load and
// CIB broadcast FMAs per pixel. Parts of the output rows are spread over the threads. C_out must be
// a multiple of 16.
// ---------------------------------------------------------------------------------------------
struct FilterGradGeom {
  const float* x;  // [n, h, w, c]
  const float* dy;  // [n, ho, wo, co]
  float* dw;        // [kh, kw, c, co]
  int64_t n, h, w, c, ho, wo, co, kh, kw, sh, sw, pt, pl;
};

// Adds the contribution of output rows [oy0, oy1) of image b to CIB × 16 entries of dW (tap (ky, kx),
// input channels ci0…, output channels cb…): the accumulators are loaded, updated along the rows in
// registers, and stored.
template <int CIB>
static inline void filter_grad_rows(const FilterGradGeom& g, int64_t b, int64_t oy0, int64_t oy1, int64_t ky, int64_t kx, int64_t ci0, int64_t cb, float* out) {
  v16 acc[CIB];
  for (int i = 0; i < CIB; ++i) acc[i] = load16(out + i * g.co);
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const int64_t iy = oy * g.sh + ky - g.pt;
    if (iy < 0 || iy >= g.h) continue;
    const float* xrow = g.x + ((b * g.h + iy) * g.w) * g.c + ci0;
    const float* dyrow = g.dy + ((b * g.ho + oy) * g.wo) * g.co + cb;
    for (int64_t ox = 0; ox < g.wo; ++ox) {
      const int64_t ix = ox * g.sw + kx - g.pl;
      if (ix < 0 || ix >= g.w) continue;
      const float* xv = xrow + ix * g.c;
      const v16 d = load16(dyrow + ox * g.co);
      for (int i = 0; i < CIB; ++i) acc[i] += xv[i] * d;
    }
  }
  for (int i = 0; i < CIB; ++i) store16(out + i * g.co, acc[i]);
}

// The contribution of flattened output rows [r0, r1) (r = b·ho + oy) to all of dW, written to `dw`
// (zeroed first). Blocks of about 64 output pixels (whole rows) are the outer loop, so their rows of
// x and dy are read from memory once and reused from L1 by every (tap, 16 output channels) unit and
// input-channel block. Each entry sums its pixels in order (b, oy, ox).
static void filter_grad_rows_range(const FilterGradGeom& g, int64_t r0, int64_t r1, float* dw) {
  const int64_t cblocks = g.co / 16, units = g.kh * g.kw * cblocks;
  const int64_t rows = std::max<int64_t>(1, 64 / std::max<int64_t>(1, g.wo));
  std::memset(dw, 0, sizeof(float) * g.kh * g.kw * g.c * g.co);
  for (int64_t r = r0; r < r1;) {
    const int64_t b = r / g.ho, oy0 = r % g.ho;
    const int64_t oy1 = std::min({g.ho, oy0 + rows, oy0 + (r1 - r)});
    for (int64_t u = 0; u < units; ++u) {
      const int64_t tap = u / cblocks, cb = (u % cblocks) * 16;
      const int64_t ky = tap / g.kw, kx = tap % g.kw;
      float* out = dw + (tap * g.c) * g.co + cb;
      int64_t ci = 0;
      for (; ci + 16 <= g.c; ci += 16) filter_grad_rows<16>(g, b, oy0, oy1, ky, kx, ci, cb, out + ci * g.co);
      for (; ci + 4 <= g.c; ci += 4) filter_grad_rows<4>(g, b, oy0, oy1, ky, kx, ci, cb, out + ci * g.co);
      for (; ci < g.c; ++ci) filter_grad_rows<1>(g, b, oy0, oy1, ky, kx, ci, cb, out + ci * g.co);
    }
    r += oy1 - oy0;
  }
}

// conv2dFilterGrad(x, [n, h, w, c], dy, [ho, wo, co], [kh, kw, strideH, strideW, padTop, padLeft], out)
napi_value Conv2dFilterGrad(napi_env env, napi_callback_info info) {
  ARGS(6)
  F32 x, dy, out;
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[2], &dy, "dy") || !get_f32(env, argv[5], &out, "out")) return nullptr;
  int64_t xs[4], ds[3], geo[6];
  if (!get_ints(env, argv[1], xs, 4) || !get_ints(env, argv[3], ds, 3) || !get_ints(env, argv[4], geo, 6))
    return throw_error(env, "@diff-instruct/native: conv2dFilterGrad: bad shape arrays");
  FilterGradGeom g{x.data, dy.data, out.data, xs[0], xs[1], xs[2], xs[3], ds[0], ds[1], ds[2], geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]};
  if (g.n < 0 || g.c < 1 || g.co < 1 || g.co % 16 != 0 || g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1)
    return throw_error(env, "@diff-instruct/native: conv2dFilterGrad: bad sizes (C_out must be a multiple of 16)");
  if ((size_t)(g.n * g.h * g.w * g.c) > x.length || (size_t)(g.n * g.ho * g.wo * g.co) > dy.length || (size_t)(g.kh * g.kw * g.c * g.co) > out.length)
    return throw_error(env, "@diff-instruct/native: conv2dFilterGrad: an operand is smaller than its shape says");
  // The output rows are cut into P parts that depend only on the shapes (one part below 3·10⁷ flops),
  // each summed into its own partial dW, then the partials are added in order: the result does not
  // depend on the number of threads, and every thread reads only its own rows of x and dy.
  const int64_t rows_total = g.n * g.ho, size = g.kh * g.kw * g.c * g.co;
  const double flops = 2.0 * g.n * g.ho * g.wo * g.kh * g.kw * g.c * g.co;
  const int64_t parts = flops < 3e7 ? 1 : std::min<int64_t>(rows_total, std::min<int64_t>(16, (int64_t)(flops / 1.5e7)));
  if (parts <= 1) {
    filter_grad_rows_range(g, 0, rows_total, g.dw);
    return nullptr;
  }
  std::vector<float> partial((size_t)(parts - 1) * size);
  const int threads = (int)std::min<int64_t>(g_threads, parts);
  split_range(parts, threads, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      filter_grad_rows_range(g, rows_total * p / parts, rows_total * (p + 1) / parts, p == 0 ? g.dw : partial.data() + (size_t)(p - 1) * size);
  });
  for (int64_t p = 1; p < parts; ++p) {
    const float* q = partial.data() + (size_t)(p - 1) * size;
    for (int64_t i = 0; i < size; ++i) g.dw[i] += q[i];
  }
  return nullptr;
}


// ---------------------------------------------------------------------------------------------
// GroupNorm with a per-channel or per-sample affine and an optional SiLU, NHWC as [N, P, C]
// (P = H·W): y = act((x − μ)·rstd·γ + β), μ and rstd = 1/√(σ² + ε) per sample and group of C/G
// channels. Each sample is a contiguous P×C block, so every pass runs along C (vectorised) with
// per-channel accumulators that are folded into groups afterwards. Samples are split over threads.
// ---------------------------------------------------------------------------------------------
struct GnGeom {
  const float* x;
  const float* dy;
  const float* gamma;
  const float* beta;
  float* y;
  float* dx;
  float* dgamma;
  float* dbeta;
  int64_t n, p, c, groups;
  bool gamma_per_sample, beta_per_sample, silu;
  float eps;
};

// exp(x) for float: Cody–Waite range reduction and Cephes' degree-5 polynomial (≈1 ulp), written
// without calls so that the loops around it vectorise. Rounds with the 1.5·2²³ trick (no floor).
inline float exp_approx(float x) {
  x = std::min(88.3762626647949f, std::max(-87.3365478515625f, x));
  const float magic = 12582912.0f;
  const float fx = (x * 1.44269504088896341f + magic) - magic;
  float r = x - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)fx + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

inline float sigmoid_approx(float z) { return 1.0f / (1.0f + exp_approx(-z)); }

// Softmax over the last axis of [rows, n]: y = exp(x − max)/Σ exp(x − max), rows split over threads
// (the wasm backend's runs on one). softmax(x, [rows, n], out)
napi_value Softmax(napi_env env, napi_callback_info info) {
  ARGS(3)
  F32 x, out;
  int64_t sh[2];
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[2], &out, "out")) return nullptr;
  if (!get_ints(env, argv[1], sh, 2) || sh[0] < 0 || sh[1] < 1) return throw_error(env, "@diff-instruct/native: softmax: expected a shape [rows, n] with n ≥ 1");
  const int64_t rows = sh[0], n = sh[1];
  if ((size_t)(rows * n) > x.length || (size_t)(rows * n) > out.length) return throw_error(env, "@diff-instruct/native: softmax: x or out is smaller than its shape says");
  split_range(rows, rows * n < (int64_t{1} << 15) ? 1 : g_threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x.data + r * n;
      float* yr = out.data + r * n;
      float m = xr[0];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, xr[i]);
      float sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        yr[i] = exp_approx(xr[i] - m);
        sum += yr[i];
      }
      const float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  });
  return nullptr;
}

// Per-channel mean and rstd of sample s's group statistics (two passes: the mean, then the
// variance of the centred values, as the tfjs path does).
void gn_channel_stats(const GnGeom& g, int64_t s, float* mean_c, float* rstd_c, std::vector<float>& acc) {
  const int64_t P = g.p, C = g.c, cg = C / g.groups;
  const float* xs = g.x + s * P * C;
  const double m = (double)P * cg;
  std::fill(acc.begin(), acc.end(), 0.0f);
  float* __restrict a = acc.data();
  for (int64_t q = 0; q < P; ++q) {
    const float* __restrict row = xs + q * C;
    for (int64_t k = 0; k < C; ++k) a[k] += row[k];
  }
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    double sum = 0;
    for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) sum += a[k];
    for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) mean_c[k] = (float)(sum / m);
  }
  std::fill(acc.begin(), acc.end(), 0.0f);
  for (int64_t q = 0; q < P; ++q) {
    const float* __restrict row = xs + q * C;
    for (int64_t k = 0; k < C; ++k) {
      const float d = row[k] - mean_c[k];
      a[k] += d * d;
    }
  }
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    double sum = 0;
    for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) sum += a[k];
    const float r = (float)(1.0 / std::sqrt(sum / m + (double)g.eps));
    for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) rstd_c[k] = r;
  }
}

void gn_forward_samples(const GnGeom& g, int64_t s0, int64_t s1) {
  const int64_t P = g.p, C = g.c;
  std::vector<float> mean(C), rstd(C), acc(C), A(C), B(C);
  for (int64_t s = s0; s < s1; ++s) {
    gn_channel_stats(g, s, mean.data(), rstd.data(), acc);
    const float* gam = g.gamma + (g.gamma_per_sample ? s * C : 0);
    const float* bet = g.beta + (g.beta_per_sample ? s * C : 0);
    for (int64_t k = 0; k < C; ++k) {
      A[k] = rstd[k] * gam[k];
      B[k] = bet[k] - mean[k] * A[k];
    }
    const float* __restrict a = A.data();
    const float* __restrict b = B.data();
    for (int64_t q = 0; q < P; ++q) {
      const float* __restrict xr = g.x + (s * P + q) * C;
      float* __restrict yr = g.y + (s * P + q) * C;
      if (g.silu) {
        for (int64_t k = 0; k < C; ++k) {
          const float z = xr[k] * a[k] + b[k];
          yr[k] = z * sigmoid_approx(z);
        }
      } else {
        for (int64_t k = 0; k < C; ++k) yr[k] = xr[k] * a[k] + b[k];
      }
    }
  }
}

// Pass 1 of the backward for one sample: dz = dy·act'(z) into dz, and per channel Σ dz, Σ dz·x̂.
// A template, so that the SiLU test is not inside the loop (which stops GCC vectorising it).
template <bool Act>
void gn_backward_pass1(const float* __restrict x, const float* __restrict dy, float* __restrict dz, int64_t P, int64_t C,
                       const float* __restrict mu, const float* __restrict rs, const float* __restrict gam,
                       const float* __restrict bet, float* __restrict db, float* __restrict dg) {
  for (int64_t q = 0; q < P; ++q) {
    const float* __restrict xr = x + q * C;
    const float* __restrict dyr = dy + q * C;
    float* __restrict dzr = dz + q * C;
    for (int64_t k = 0; k < C; ++k) {
      const float xh = (xr[k] - mu[k]) * rs[k];
      float d = dyr[k];
      if constexpr (Act) {
        const float z = xh * gam[k] + bet[k];
        const float sg = sigmoid_approx(z);
        d = d * (sg * (1.0f + z * (1.0f - sg)));
      }
      dzr[k] = d;
      db[k] += d;
      dg[k] += d * xh;
    }
  }
}

// ∂ of y = act(x̂·γ + β), x̂ = (x − μ)·rstd, with dz = dy·act'(z):
//   ∂β = Σ_P dz,  ∂γ = Σ_P dz·x̂  (per sample and channel),
//   ∂x = rstd·(dz·γ − S₁/M − x̂·S₂/M),  S₁ = Σ_group dz·γ,  S₂ = Σ_group dz·γ·x̂,  M = P·C/G.
// Pass 1 writes dz into dx and accumulates per channel; pass 2 turns dx into ∂x in place.
void gn_backward_samples(const GnGeom& g, int64_t s0, int64_t s1) {
  const int64_t P = g.p, C = g.c, cg = C / g.groups;
  const float m = (float)(P * cg);
  std::vector<float> mean(C), rstd(C), acc(C), s1c(C), s2c(C);
  for (int64_t s = s0; s < s1; ++s) {
    gn_channel_stats(g, s, mean.data(), rstd.data(), acc);
    const float* gam = g.gamma + (g.gamma_per_sample ? s * C : 0);
    const float* bet = g.beta + (g.beta_per_sample ? s * C : 0);
    float* __restrict db = g.dbeta + s * C;
    float* __restrict dg = g.dgamma + s * C;
    std::fill(db, db + C, 0.0f);
    std::fill(dg, dg + C, 0.0f);
    const float* __restrict mu = mean.data();
    const float* __restrict rs = rstd.data();
    if (g.silu) gn_backward_pass1<true>(g.x + s * P * C, g.dy + s * P * C, g.dx + s * P * C, P, C, mu, rs, gam, bet, db, dg);
    else gn_backward_pass1<false>(g.x + s * P * C, g.dy + s * P * C, g.dx + s * P * C, P, C, mu, rs, gam, bet, db, dg);
    // S₁/M and S₂/M per group, spread to the group's channels
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      float t1 = 0, t2 = 0;
      for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) {
        t1 += gam[k] * db[k];
        t2 += gam[k] * dg[k];
      }
      for (int64_t k = gr * cg; k < (gr + 1) * cg; ++k) {
        s1c[k] = t1 / m;
        s2c[k] = t2 / m;
      }
    }
    const float* __restrict a1 = s1c.data();
    const float* __restrict a2 = s2c.data();
    for (int64_t q = 0; q < P; ++q) {
      const float* __restrict xr = g.x + (s * P + q) * C;
      float* __restrict dxr = g.dx + (s * P + q) * C;
      for (int64_t k = 0; k < C; ++k) {
        const float xh = (xr[k] - mu[k]) * rs[k];
        dxr[k] = rs[k] * (dxr[k] * gam[k] - a1[k] - xh * a2[k]);
      }
    }
  }
}

// groupNorm(x, dims [n, p, c, groups, gammaPerSample, betaPerSample, silu], eps, gamma, beta, y)
// groupNormGrad(x, dy, dims, eps, gamma, beta, dx, dgamma [n·c], dbeta [n·c])
bool gn_geom(napi_env env, napi_value dims, napi_value eps, const F32& x, const F32& gamma, const F32& beta, GnGeom* g, const char* name) {
  int64_t d[7];
  if (!get_ints(env, dims, d, 7)) {
    throw_error(env, std::string("@diff-instruct/native: ") + name + ": bad dims array");
    return false;
  }
  double e = 0;
  napi_get_value_double(env, eps, &e);
  g->n = d[0], g->p = d[1], g->c = d[2], g->groups = d[3];
  g->gamma_per_sample = d[4] != 0, g->beta_per_sample = d[5] != 0, g->silu = d[6] != 0;
  g->eps = (float)e;
  if (g->n < 0 || g->p < 1 || g->c < 1 || g->groups < 1 || g->c % g->groups != 0 || !(e > 0)) {
    throw_error(env, std::string("@diff-instruct/native: ") + name + ": bad sizes (C must be a multiple of the groups, eps > 0)");
    return false;
  }
  if ((size_t)(g->n * g->p * g->c) > x.length || (size_t)((g->gamma_per_sample ? g->n : 1) * g->c) > gamma.length ||
      (size_t)((g->beta_per_sample ? g->n : 1) * g->c) > beta.length) {
    throw_error(env, std::string("@diff-instruct/native: ") + name + ": an operand is smaller than its shape says");
    return false;
  }
  return true;
}

int gn_threads(const GnGeom& g) {
  return t_worker || g.n * g.p * g.c < (1 << 16) ? 1 : (int)std::max<int64_t>(1, std::min<int64_t>(g_threads, g.n));
}

napi_value GroupNorm(napi_env env, napi_callback_info info) {
  ARGS(6)
  F32 x, gamma, beta, y;
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[3], &gamma, "gamma") || !get_f32(env, argv[4], &beta, "beta") || !get_f32(env, argv[5], &y, "y")) return nullptr;
  GnGeom g{};
  if (!gn_geom(env, argv[1], argv[2], x, gamma, beta, &g, "groupNorm")) return nullptr;
  if ((size_t)(g.n * g.p * g.c) > y.length) return throw_error(env, "@diff-instruct/native: groupNorm: y is smaller than x");
  g.x = x.data, g.gamma = gamma.data, g.beta = beta.data, g.y = y.data;
  split_range(g.n, gn_threads(g), [&g](int64_t s0, int64_t s1) { gn_forward_samples(g, s0, s1); });
  return nullptr;
}

napi_value GroupNormGrad(napi_env env, napi_callback_info info) {
  ARGS(9)
  F32 x, dy, gamma, beta, dx, dgamma, dbeta;
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[1], &dy, "dy") || !get_f32(env, argv[4], &gamma, "gamma") ||
      !get_f32(env, argv[5], &beta, "beta") || !get_f32(env, argv[6], &dx, "dx") || !get_f32(env, argv[7], &dgamma, "dgamma") ||
      !get_f32(env, argv[8], &dbeta, "dbeta"))
    return nullptr;
  GnGeom g{};
  if (!gn_geom(env, argv[2], argv[3], x, gamma, beta, &g, "groupNormGrad")) return nullptr;
  const size_t total = (size_t)(g.n * g.p * g.c);
  if (total > dy.length || total > dx.length || (size_t)(g.n * g.c) > dgamma.length || (size_t)(g.n * g.c) > dbeta.length)
    return throw_error(env, "@diff-instruct/native: groupNormGrad: dy, dx, dgamma or dbeta is smaller than its shape says");
  g.x = x.data, g.dy = dy.data, g.gamma = gamma.data, g.beta = beta.data, g.dx = dx.data, g.dgamma = dgamma.data, g.dbeta = dbeta.data;
  split_range(g.n, gn_threads(g), [&g](int64_t s0, int64_t s1) { gn_backward_samples(g, s0, s1); });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Concat and split along an axis, as rows: each of `outer` rows of the output is the parts' rows
// one after the other (part i contributes inner[i] floats per row).
// concatRows(parts: Float32Array[], inner: number[], outer, out) / splitRows(x, inner, outer, parts)
// ---------------------------------------------------------------------------------------------
bool get_parts(napi_env env, napi_value arr, napi_value inner_arr, std::vector<F32>& parts, std::vector<int64_t>& inner, const char* name) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n == 0) {
    throw_error(env, std::string("@diff-instruct/native: ") + name + ": expected a non-empty array of parts");
    return false;
  }
  parts.resize(n);
  inner.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (!get_f32(env, e, &parts[i], "each part")) return false;
  }
  if (!get_ints(env, inner_arr, inner.data(), n)) {
    throw_error(env, std::string("@diff-instruct/native: ") + name + ": bad row sizes");
    return false;
  }
  return true;
}

// Threads for a copy of `n` floats: one below 2¹⁸ (1 MiB), where waking the pool costs more than it saves.
static int copy_threads(int64_t n) { return n < (int64_t{1} << 18) ? 1 : g_threads; }

napi_value ConcatRows(napi_env env, napi_callback_info info) {
  ARGS(4)
  std::vector<F32> parts;
  std::vector<int64_t> inner;
  if (!get_parts(env, argv[0], argv[1], parts, inner, "concatRows")) return nullptr;
  int64_t outer = 0;
  F32 out;
  if (!get_int(env, argv[2], &outer) || outer < 0 || !get_f32(env, argv[3], &out, "out")) return throw_error(env, "@diff-instruct/native: concatRows: bad arguments");
  int64_t row = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (inner[i] < 0 || (size_t)(outer * inner[i]) > parts[i].length) return throw_error(env, "@diff-instruct/native: concatRows: a part is smaller than its shape says");
    row += inner[i];
  }
  if ((size_t)(outer * row) > out.length) return throw_error(env, "@diff-instruct/native: concatRows: out is smaller than its shape says");
  split_range(outer, copy_threads(outer * row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* dst = out.data + r * row;
      for (size_t i = 0; i < parts.size(); ++i) {
        std::memcpy(dst, parts[i].data + r * inner[i], sizeof(float) * inner[i]);
        dst += inner[i];
      }
    }
  });
  return nullptr;
}

napi_value SplitRows(napi_env env, napi_callback_info info) {
  ARGS(4)
  F32 x;
  if (!get_f32(env, argv[0], &x, "x")) return nullptr;
  std::vector<F32> parts;
  std::vector<int64_t> inner;
  if (!get_parts(env, argv[3], argv[1], parts, inner, "splitRows")) return nullptr;
  int64_t outer = 0;
  if (!get_int(env, argv[2], &outer) || outer < 0) return throw_error(env, "@diff-instruct/native: splitRows: bad arguments");
  int64_t row = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (inner[i] < 0 || (size_t)(outer * inner[i]) > parts[i].length) return throw_error(env, "@diff-instruct/native: splitRows: a part is smaller than its shape says");
    row += inner[i];
  }
  if ((size_t)(outer * row) > x.length) return throw_error(env, "@diff-instruct/native: splitRows: x is smaller than its shape says");
  split_range(outer, copy_threads(outer * row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* src = x.data + r * row;
      for (size_t i = 0; i < parts.size(); ++i) {
        std::memcpy(parts[i].data + r * inner[i], src, sizeof(float) * inner[i]);
        src += inner[i];
      }
    }
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Optimiser updates, one call per parameter instead of ~14 tfjs kernels. Float32 arithmetic in the
// order of the tfjs ops they replace, with no fused multiply-adds, so that the results equal theirs
// up to rounding (the wasm backend's: bit for bit in the tests). Each path is deterministic, so a run
// resumes exactly on either.
// ---------------------------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// adamUpdate(p, m, v, g, [lr, beta1, 1 − beta1, beta2, 1 − beta2, eps, bc1, bc2, scale], pOut, mOut, vOut):
//   g ← g·scale (when scale ≠ 1); m ← m·β1 + g·(1 − β1); v ← v·β2 + g²·(1 − β2);
//   p ← p − ((m / bc1) / (√(v / bc2) + ε))·lr
void adam_range(const float* __restrict p, const float* __restrict m, const float* __restrict v, const float* __restrict g,
                const float* h, bool scaled, float* __restrict po, float* __restrict mo, float* __restrict vo, int64_t i0, int64_t i1) {
  const float lr = h[0], b1 = h[1], c1 = h[2], b2 = h[3], c2 = h[4], eps = h[5], bc1 = h[6], bc2 = h[7], sc = h[8];
  for (int64_t i = i0; i < i1; ++i) {
    const float gi = scaled ? g[i] * sc : g[i];
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + (gi * gi) * c2;
    const float step = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    mo[i] = mi;
    vo[i] = vi;
    po[i] = p[i] - step * lr;
  }
}

// emaUpdate(shadow, p, [beta, 1 − beta], out): out = shadow·β + p·(1 − β)
void ema_range(const float* __restrict s, const float* __restrict p, float b, float c, float* __restrict o, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) o[i] = s[i] * b + p[i] * c;
}

// In-place versions (no __restrict: the outputs are the inputs), for parameters whose storage no
// other tensor shares. Each element is read before it is written, with the same float operations.
void adam_inplace_range(float* p, float* m, float* v, const float* g, const float* h, bool scaled, int64_t i0, int64_t i1) {
  const float lr = h[0], b1 = h[1], c1 = h[2], b2 = h[3], c2 = h[4], eps = h[5], bc1 = h[6], bc2 = h[7], sc = h[8];
  for (int64_t i = i0; i < i1; ++i) {
    const float gi = scaled ? g[i] * sc : g[i];
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + (gi * gi) * c2;
    const float step = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - step * lr;
  }
}

void ema_inplace_range(float* s, const float* p, float b, float c, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) s[i] = s[i] * b + p[i] * c;
}

#pragma GCC pop_options

napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  ARGS(8)
  F32 p, m, v, g, po, mo, vo;
  if (!get_f32(env, argv[0], &p, "p") || !get_f32(env, argv[1], &m, "m") || !get_f32(env, argv[2], &v, "v") || !get_f32(env, argv[3], &g, "g") ||
      !get_f32(env, argv[5], &po, "pOut") || !get_f32(env, argv[6], &mo, "mOut") || !get_f32(env, argv[7], &vo, "vOut"))
    return nullptr;
  float h[9];
  for (uint32_t i = 0; i < 9; ++i) {
    napi_value e;
    double d = 0;
    if (napi_get_element(env, argv[4], i, &e) != napi_ok || napi_get_value_double(env, e, &d) != napi_ok)
      return throw_error(env, "@diff-instruct/native: adamUpdate: expected 9 hyper-parameters");
    h[i] = (float)d;
  }
  const size_t n = p.length;
  if (m.length != n || v.length != n || g.length != n || po.length < n || mo.length < n || vo.length < n)
    return throw_error(env, "@diff-instruct/native: adamUpdate: p, m, v, g and the outputs must have the same size");
  const bool scaled = h[8] != 1.0f;
  adam_range(p.data, m.data, v.data, g.data, h, scaled, po.data, mo.data, vo.data, 0, (int64_t)n);
  return nullptr;
}

napi_value EmaUpdate(napi_env env, napi_callback_info info) {
  ARGS(4)
  F32 sh, p, out;
  if (!get_f32(env, argv[0], &sh, "shadow") || !get_f32(env, argv[1], &p, "p") || !get_f32(env, argv[3], &out, "out")) return nullptr;
  double bc[2];
  for (uint32_t i = 0; i < 2; ++i) {
    napi_value e;
    if (napi_get_element(env, argv[2], i, &e) != napi_ok || napi_get_value_double(env, e, &bc[i]) != napi_ok)
      return throw_error(env, "@diff-instruct/native: emaUpdate: expected [beta, 1 - beta]");
  }
  if (p.length != sh.length || out.length < sh.length) return throw_error(env, "@diff-instruct/native: emaUpdate: shadow, p and out must have the same size");
  ema_range(sh.data, p.data, (float)bc[0], (float)bc[1], out.data, 0, (int64_t)sh.length);
  return nullptr;
}

// Reads an array of Float32Arrays.
static bool get_f32_list(napi_env env, napi_value arr, std::vector<F32>& out, const char* name) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) {
    throw_error(env, (std::string("@diff-instruct/native: ") + name + " must be an array of Float32Arrays").c_str());
    return false;
  }
  out.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (!get_f32(env, e, &out[i], name)) return false;
  }
  return true;
}

// adamInPlace(ps, ms, vs, gs, h): the Adam update of adamUpdate for every parameter of the lists,
// written into p, m and v. Parameters are split over the threads.
napi_value AdamInPlace(napi_env env, napi_callback_info info) {
  ARGS(5)
  std::vector<F32> ps, ms, vs, gs;
  if (!get_f32_list(env, argv[0], ps, "ps") || !get_f32_list(env, argv[1], ms, "ms") || !get_f32_list(env, argv[2], vs, "vs") || !get_f32_list(env, argv[3], gs, "gs"))
    return nullptr;
  float h[9];
  for (uint32_t i = 0; i < 9; ++i) {
    napi_value e;
    double d = 0;
    if (napi_get_element(env, argv[4], i, &e) != napi_ok || napi_get_value_double(env, e, &d) != napi_ok)
      return throw_error(env, "@diff-instruct/native: adamInPlace: expected 9 hyper-parameters");
    h[i] = (float)d;
  }
  const size_t k = ps.size();
  if (ms.size() != k || vs.size() != k || gs.size() != k) return throw_error(env, "@diff-instruct/native: adamInPlace: ps, ms, vs and gs must have the same length");
  int64_t total = 0;
  for (size_t j = 0; j < k; ++j) {
    const size_t n = ps[j].length;
    if (ms[j].length != n || vs[j].length != n || gs[j].length != n)
      return throw_error(env, "@diff-instruct/native: adamInPlace: p, m, v and g of a parameter must have the same size");
    total += (int64_t)n;
  }
  const bool scaled = h[8] != 1.0f;
  split_range((int64_t)k, total < (int64_t{1} << 16) ? 1 : g_threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) adam_inplace_range(ps[j].data, ms[j].data, vs[j].data, gs[j].data, h, scaled, 0, (int64_t)ps[j].length);
  });
  return nullptr;
}

// emaInPlace(shadows, ps, [beta, 1 − beta]): shadow ← shadow·β + p·(1 − β) for every pair, in place.
napi_value EmaInPlace(napi_env env, napi_callback_info info) {
  ARGS(3)
  std::vector<F32> ss, ps;
  if (!get_f32_list(env, argv[0], ss, "shadows") || !get_f32_list(env, argv[1], ps, "ps")) return nullptr;
  double bc[2];
  for (uint32_t i = 0; i < 2; ++i) {
    napi_value e;
    if (napi_get_element(env, argv[2], i, &e) != napi_ok || napi_get_value_double(env, e, &bc[i]) != napi_ok)
      return throw_error(env, "@diff-instruct/native: emaInPlace: expected [beta, 1 - beta]");
  }
  if (ss.size() != ps.size()) return throw_error(env, "@diff-instruct/native: emaInPlace: shadows and ps must have the same length");
  int64_t total = 0;
  for (size_t j = 0; j < ss.size(); ++j) {
    if (ss[j].length != ps[j].length) return throw_error(env, "@diff-instruct/native: emaInPlace: a shadow and its parameter must have the same size");
    total += (int64_t)ss[j].length;
  }
  split_range((int64_t)ss.size(), total < (int64_t{1} << 16) ? 1 : g_threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) ema_inplace_range(ss[j].data, ps[j].data, (float)bc[0], (float)bc[1], 0, (int64_t)ss[j].length);
  });
  return nullptr;
}

// sumSquares(parts: Float32Array[]): Σ over every part of x², accumulated in double.
napi_value SumSquares(napi_env env, napi_callback_info info) {
  ARGS(1)
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[0], &n) != napi_ok) return throw_error(env, "@diff-instruct/native: sumSquares: expected an array");
  double total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    F32 x;
    napi_get_element(env, argv[0], i, &e);
    if (!get_f32(env, e, &x, "each part")) return nullptr;
    double acc = 0;
    for (size_t j = 0; j < x.length; ++j) acc += (double)x.data[j] * x.data[j];
    total += acc;
  }
  napi_value r;
  napi_create_double(env, total, &r);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Data movement: transpose and reverse of tensors of rank ≤ 4 (shapes padded with leading 1s), and
// 2× nearest-neighbour upsampling. The wasm backend runs these in scalar loops.
// transpose4(x, shape[4], perm[4], out)  reverse4(x, shape[4], flip[4], out)  upsample2x(x, [n, h, w, c], out)
// ---------------------------------------------------------------------------------------------
napi_value Transpose4(napi_env env, napi_callback_info info) {
  ARGS(4)
  F32 x, out;
  int64_t sh[4], perm[4];
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[3], &out, "out")) return nullptr;
  if (!get_ints(env, argv[1], sh, 4) || !get_ints(env, argv[2], perm, 4)) return throw_error(env, "@diff-instruct/native: transpose4: bad shape or perm");
  bool seen[4] = {false, false, false, false};
  for (int k = 0; k < 4; ++k) {
    if (sh[k] < 0 || perm[k] < 0 || perm[k] > 3 || seen[perm[k]]) return throw_error(env, "@diff-instruct/native: transpose4: perm must be a permutation of 0..3");
    seen[perm[k]] = true;
  }
  const int64_t total = sh[0] * sh[1] * sh[2] * sh[3];
  if ((size_t)total > x.length || (size_t)total > out.length) return throw_error(env, "@diff-instruct/native: transpose4: x or out is smaller than its shape says");
  const int64_t stride[4] = {sh[1] * sh[2] * sh[3], sh[2] * sh[3], sh[3], 1};
  const int64_t o[4] = {sh[perm[0]], sh[perm[1]], sh[perm[2]], sh[perm[3]]};
  const int64_t s0 = stride[perm[0]], s1 = stride[perm[1]], s2 = stride[perm[2]], s3 = stride[perm[3]];
  float* dst = out.data;
  for (int64_t a = 0; a < o[0]; ++a)
    for (int64_t b = 0; b < o[1]; ++b)
      for (int64_t c = 0; c < o[2]; ++c) {
        const float* src = x.data + a * s0 + b * s1 + c * s2;
        if (s3 == 1) std::memcpy(dst, src, sizeof(float) * o[3]);
        else for (int64_t d = 0; d < o[3]; ++d) dst[d] = src[d * s3];
        dst += o[3];
      }
  return nullptr;
}

napi_value Reverse4(napi_env env, napi_callback_info info) {
  ARGS(4)
  F32 x, out;
  int64_t sh[4], flip[4];
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[3], &out, "out")) return nullptr;
  if (!get_ints(env, argv[1], sh, 4) || !get_ints(env, argv[2], flip, 4)) return throw_error(env, "@diff-instruct/native: reverse4: bad shape or axes");
  for (int k = 0; k < 4; ++k)
    if (sh[k] < 0) return throw_error(env, "@diff-instruct/native: reverse4: bad shape");
  const int64_t total = sh[0] * sh[1] * sh[2] * sh[3];
  if ((size_t)total > x.length || (size_t)total > out.length) return throw_error(env, "@diff-instruct/native: reverse4: x or out is smaller than its shape says");
  float* dst = out.data;
  for (int64_t a = 0; a < sh[0]; ++a)
    for (int64_t b = 0; b < sh[1]; ++b)
      for (int64_t c = 0; c < sh[2]; ++c) {
        const int64_t ia = flip[0] ? sh[0] - 1 - a : a, ib = flip[1] ? sh[1] - 1 - b : b, ic = flip[2] ? sh[2] - 1 - c : c;
        const float* src = x.data + ((ia * sh[1] + ib) * sh[2] + ic) * sh[3];
        if (flip[3]) for (int64_t d = 0; d < sh[3]; ++d) dst[d] = src[sh[3] - 1 - d];
        else std::memcpy(dst, src, sizeof(float) * sh[3]);
        dst += sh[3];
      }
  return nullptr;
}

// The arguments (x, [n, h, w, c], out) of the resampling kernels; false (with a JS error set) when
// they are not two Float32Arrays and four non-negative integers.
static bool get_resample_args(napi_env env, napi_value* argv, const char* name, F32* x, F32* out, int64_t sh[4]) {
  if (!get_f32(env, argv[0], x, "x") || !get_f32(env, argv[2], out, "out")) return false;
  if (!get_ints(env, argv[1], sh, 4) || sh[0] < 0 || sh[1] < 0 || sh[2] < 0 || sh[3] < 0) {
    throw_error(env, (std::string("@diff-instruct/native: ") + name + ": expected a shape of four non-negative integers").c_str());
    return false;
  }
  return true;
}

napi_value Upsample2x(napi_env env, napi_callback_info info) {
  ARGS(3)
  F32 x, out;
  int64_t sh[4];
  if (!get_resample_args(env, argv, "upsample2x", &x, &out, sh)) return nullptr;
  const int64_t n = sh[0], h = sh[1], w = sh[2], c = sh[3];
  if ((size_t)(n * h * w * c) > x.length || (size_t)(n * 4 * h * w * c) > out.length)
    return throw_error(env, "@diff-instruct/native: upsample2x: x or out is smaller than its shape says");
  split_range(n * h, copy_threads(n * 4 * h * w * c), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {  // each input row becomes two output rows
      const float* src = x.data + i * w * c;
      float* row = out.data + i * 4 * w * c;
      for (int64_t j = 0; j < w; ++j) {
        std::memcpy(row + (2 * j) * c, src + j * c, sizeof(float) * c);
        std::memcpy(row + (2 * j + 1) * c, src + j * c, sizeof(float) * c);
      }
      std::memcpy(row + 2 * w * c, row, sizeof(float) * 2 * w * c);
    }
  });
  return nullptr;
}

// 2×2 average pooling with stride 2 (the UNets' downsampling), NHWC, even H and W:
// out = ((a + b) + (c + d)) · 0.25 for the four pixels of each window, rows split over threads.
// avgPool2x(x, [n, h, w, c], out)
napi_value AvgPool2x(napi_env env, napi_callback_info info) {
  ARGS(3)
  F32 x, out;
  int64_t sh[4];
  if (!get_resample_args(env, argv, "avgPool2x", &x, &out, sh)) return nullptr;
  const int64_t n = sh[0], h = sh[1], w = sh[2], c = sh[3];
  if (h % 2 != 0 || w % 2 != 0) return throw_error(env, "@diff-instruct/native: avgPool2x: expected a shape [n, h, w, c] with even h and w");
  if ((size_t)(n * h * w * c) > x.length || (size_t)(n * (h / 2) * (w / 2) * c) > out.length)
    return throw_error(env, "@diff-instruct/native: avgPool2x: x or out is smaller than its shape says");
  const int64_t ho = h / 2, wo = w / 2;
  split_range(n * ho, copy_threads(n * h * w * c), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {  // output row r reads input rows 2r and 2r + 1 (of the same image)
      const float* top = x.data + 2 * r * w * c;
      const float* bottom = top + w * c;
      float* o = out.data + r * wo * c;
      for (int64_t j = 0; j < wo; ++j)
        for (int64_t k = 0; k < c; ++k)
          o[j * c + k] = ((top[2 * j * c + k] + top[(2 * j + 1) * c + k]) + (bottom[2 * j * c + k] + bottom[(2 * j + 1) * c + k])) * 0.25f;
    }
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Elementwise add and multiply of float32 tensors, split over the threads for large ones (the wasm
// backend runs them on one thread). Each output element is one IEEE operation, as in tfjs, so the
// results are identical. b (or a) may repeat: it is read cyclically, b[i % len(b)], which covers a
// scalar and a broadcast over the leading axes ([C] against [..., C]).
// binary(op 0 add | 1 mul, a, b, out)
// ---------------------------------------------------------------------------------------------
template <int OP>
static void binary_range(const float* __restrict a, int64_t na, const float* __restrict b, int64_t nb, float* __restrict o, int64_t i0, int64_t i1) {
  auto f = [](float x, float y) { return OP == 0 ? x + y : x * y; };
  if (na == nb) {
    for (int64_t i = i0; i < i1; ++i) o[i] = f(a[i], b[i]);
  } else if (nb == 1) {
    const float y = b[0];
    for (int64_t i = i0; i < i1; ++i) o[i] = f(a[i], y);
  } else if (na == 1) {
    const float x = a[0];
    for (int64_t i = i0; i < i1; ++i) o[i] = f(x, b[i]);
  } else if (nb < na) {
    // rows of nb: whole rows vectorise
    int64_t i = i0;
    for (; i < i1 && i % nb != 0; ++i) o[i] = f(a[i], b[i % nb]);
    for (; i + nb <= i1; i += nb)
      for (int64_t j = 0; j < nb; ++j) o[i + j] = f(a[i + j], b[j]);
    for (; i < i1; ++i) o[i] = f(a[i], b[i % nb]);
  } else {
    int64_t i = i0;
    for (; i < i1 && i % na != 0; ++i) o[i] = f(a[i % na], b[i]);
    for (; i + na <= i1; i += na)
      for (int64_t j = 0; j < na; ++j) o[i + j] = f(a[j], b[i + j]);
    for (; i < i1; ++i) o[i] = f(a[i % na], b[i]);
  }
}

napi_value Binary(napi_env env, napi_callback_info info) {
  ARGS(4)
  int64_t op = 0;
  F32 a, b, out;
  if (!get_int(env, argv[0], &op) || (op != 0 && op != 1)) return throw_error(env, "@diff-instruct/native: binary: op must be 0 (add) or 1 (mul)");
  if (!get_f32(env, argv[1], &a, "a") || !get_f32(env, argv[2], &b, "b") || !get_f32(env, argv[3], &out, "out")) return nullptr;
  const int64_t n = (int64_t)out.length, na = (int64_t)a.length, nb = (int64_t)b.length;
  const int64_t longer = std::max(na, nb), shorter = std::min(na, nb);
  if (shorter == 0 || longer != n || n % shorter != 0)
    return throw_error(env, "@diff-instruct/native: binary: the longer input must have the output's size and the shorter must divide it");
  const int threads = t_worker || n < (1 << 16) ? 1 : g_threads;
  split_range(n, threads, [&](int64_t i0, int64_t i1) {
    if (op == 0) binary_range<0>(a.data, na, b.data, nb, out.data, i0, i1);
    else binary_range<1>(a.data, na, b.data, nb, out.data, i0, i1);
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Column sums of x [rows, cols] → [cols]: the gradient of a bias added along the last axis. The rows
// are cut into a number of slices that depends on the shape only; each slice sums its rows in order
// and the slices are added in order, so the result does not depend on the number of threads.
// columnSums(x, rows, cols, out)
// ---------------------------------------------------------------------------------------------
napi_value ColumnSums(napi_env env, napi_callback_info info) {
  ARGS(4)
  F32 x, out;
  int64_t rows = 0, cols = 0;
  if (!get_f32(env, argv[0], &x, "x") || !get_f32(env, argv[3], &out, "out")) return nullptr;
  if (!get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols) || rows < 0 || cols < 1)
    return throw_error(env, "@diff-instruct/native: columnSums: bad sizes");
  if ((size_t)(rows * cols) > x.length || (size_t)cols > out.length)
    return throw_error(env, "@diff-instruct/native: columnSums: x or out is smaller than its shape says");
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(16, rows * cols / 16384));
  std::vector<float> part((size_t)(slices * cols), 0.0f);
  const float* xd = x.data;
  const int threads = t_worker || slices == 1 ? 1 : g_threads;
  split_range(slices, threads, [&](int64_t s0, int64_t s1) {
    for (int64_t sl = s0; sl < s1; ++sl) {
      float* acc = part.data() + sl * cols;
      for (int64_t r = rows * sl / slices; r < rows * (sl + 1) / slices; ++r) {
        const float* row = xd + r * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += row[c];
      }
    }
  });
  for (int64_t c = 0; c < cols; ++c) out.data[c] = part[c];
  for (int64_t sl = 1; sl < slices; ++sl)
    for (int64_t c = 0; c < cols; ++c) out.data[c] += part[sl * cols + c];
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Dropout masks from @diff-instruct/sde's Rng (xoshiro128**), draw for draw: unit i is kept (value
// 1/keep) when its draw u = next/2³², rounded to float32, is below keep, else 0.
// dropoutMask([s0, s1, s2, s3], keep, out) → the state after out.length draws
// ---------------------------------------------------------------------------------------------
// xoshiro128** (the generator of `@diff-instruct/sde`'s Rng) with a jump ahead by any number of
// draws. Its state update is linear over GF(2): T^d is applied as Σ over the set bits of d of the
// precomputed T^(2^k), each a 128×128 bit matrix stored as the images of the 128 unit states.
struct Xoshiro128 {
  uint32_t s[4];
  static uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
  void advance() {
    const uint32_t t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
  }
  uint32_t next() {
    const uint32_t result = rotl(s[1] * 5u, 7) * 9u;
    advance();
    return result;
  }
  struct Matrix {
    uint32_t col[128][4];  // col[i]: the image of the state with only bit i set
    Xoshiro128 apply(const Xoshiro128& x) const {
      Xoshiro128 y{{0, 0, 0, 0}};
      for (int i = 0; i < 128; ++i)
        if ((x.s[i >> 5] >> (i & 31)) & 1u)
          for (int w = 0; w < 4; ++w) y.s[w] ^= col[i][w];
      return y;
    }
  };
  // powers[k] = T^(2^k), k < 64
  static const std::vector<Matrix>& powers() {
    static const std::vector<Matrix> p = [] {
      std::vector<Matrix> m(64);
      for (int i = 0; i < 128; ++i) {
        Xoshiro128 e{{0, 0, 0, 0}};
        e.s[i >> 5] = 1u << (i & 31);
        e.advance();
        std::memcpy(m[0].col[i], e.s, sizeof e.s);
      }
      for (int k = 1; k < 64; ++k)
        for (int i = 0; i < 128; ++i) {
          Xoshiro128 c;
          std::memcpy(c.s, m[k - 1].col[i], sizeof c.s);
          const Xoshiro128 d = m[k - 1].apply(c);
          std::memcpy(m[k].col[i], d.s, sizeof d.s);
        }
      return m;
    }();
    return p;
  }
  Xoshiro128 jumped(uint64_t d) const {
    Xoshiro128 x = *this;
    if (d < 64) {
      for (uint64_t i = 0; i < d; ++i) x.advance();
      return x;
    }
    const auto& p = powers();
    for (int k = 0; k < 64; ++k)
      if ((d >> k) & 1u) x = p[k].apply(x);
    return x;
  }
};

napi_value DropoutMask(napi_env env, napi_callback_info info) {
  ARGS(3)
  int64_t st[4];
  double keep = 0;
  F32 out;
  if (!get_ints(env, argv[0], st, 4) || napi_get_value_double(env, argv[1], &keep) != napi_ok || !(keep > 0 && keep <= 1))
    return throw_error(env, "@diff-instruct/native: dropoutMask: expected a state of four integers and keep in (0, 1]");
  if (!get_f32(env, argv[2], &out, "out")) return nullptr;
  const float scale = (float)(1.0 / keep);
  // fround(r / 2³²) < keep is monotone in r: it holds exactly for r below a threshold, found once by
  // bisection (keep = 1 keeps every unit), so the loop compares integers.
  auto kept = [keep](uint64_t r) { return (double)(float)((double)r / 4294967296.0) < keep; };
  uint64_t lo = 0, hi = uint64_t{1} << 32;  // kept(r) for r < lo; not for r >= hi
  while (lo < hi) {
    const uint64_t mid = (lo + hi) / 2;
    if (kept(mid)) lo = mid + 1;
    else hi = mid;
  }
  const uint64_t threshold = lo;
  const Xoshiro128 start{{(uint32_t)st[0], (uint32_t)st[1], (uint32_t)st[2], (uint32_t)st[3]}};
  const int64_t total = (int64_t)out.length;
  // Chunks start at the stream position of their first element (a jump ahead), so the mask is the
  // serial one whatever the number of threads.
  split_range(total, total < (int64_t{1} << 16) ? 1 : g_threads, [&](int64_t i0, int64_t i1) {
    Xoshiro128 g = start.jumped((uint64_t)i0);
    for (int64_t i = i0; i < i1; ++i) out.data[i] = (uint64_t)g.next() < threshold ? scale : 0.0f;
  });
  const Xoshiro128 end = start.jumped((uint64_t)total);
  const uint32_t s0 = end.s[0], s1 = end.s[1], s2 = end.s[2], s3 = end.s[3];
  napi_value arr, v;
  napi_create_array_with_length(env, 4, &arr);
  const uint32_t ns[4] = {s0, s1, s2, s3};
  for (uint32_t i = 0; i < 4; ++i) {
    napi_create_uint32(env, ns[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  ARGS(1)
  int64_t t;
  if (!get_int(env, argv[0], &t) || t < 1) return throw_error(env, "@diff-instruct/native: setThreads expects a positive integer");
  g_threads = (int)t;
  return nullptr;
}

napi_value SetGemm(napi_env env, napi_callback_info info) {
  ARGS(1)
  size_t len = 0;
  char buf[16] = {0};
  napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len);
  const std::string which(buf, len);
  if (which == "builtin") g_use_builtin = true;
  else if (which == "im2col") g_use_builtin_conv = true;
  else if (which == "direct") g_use_builtin_conv = false;
#if DI_USE_OPENBLAS
  else if (which == "openblas") g_use_builtin = false;
#endif
  else return throw_error(env, "@diff-instruct/native: setGemm: unknown or unavailable GEMM '" + which + "'");
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, v;
  napi_create_object(env, &obj);
#if DI_USE_OPENBLAS
  napi_create_string_utf8(env, g_use_builtin ? "builtin" : "openblas", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "gemm", v);
  napi_get_boolean(env, true, &v);
#else
  napi_create_string_utf8(env, "builtin", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "gemm", v);
  napi_get_boolean(env, false, &v);
#endif
  napi_set_named_property(env, obj, "openblas", v);
#if DI_USE_OPENBLAS
  // The kernels OpenBLAS picked for this CPU (its DYNAMIC_ARCH detection, or OPENBLAS_CORETYPE).
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "blasCore", v);
#endif
  napi_create_int32(env, g_threads, &v);
  napi_set_named_property(env, obj, "threads", v);
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  g_threads = std::max(1u, std::thread::hardware_concurrency());
#if DI_USE_OPENBLAS
  openblas_set_num_threads(1);
#endif
  const napi_property_descriptor props[] = {
      {"gemmBatched", nullptr, GemmBatched, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dFilterGrad", nullptr, Conv2dFilterGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"groupNorm", nullptr, GroupNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"groupNormGrad", nullptr, GroupNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"concatRows", nullptr, ConcatRows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"splitRows", nullptr, SplitRows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, AdamUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"emaUpdate", nullptr, EmaUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamInPlace", nullptr, AdamInPlace, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"emaInPlace", nullptr, EmaInPlace, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumSquares", nullptr, SumSquares, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"transpose4", nullptr, Transpose4, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reverse4", nullptr, Reverse4, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"upsample2x", nullptr, Upsample2x, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnSums", nullptr, ColumnSums, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Softmax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPool2x", nullptr, AvgPool2x, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dropoutMask", nullptr, DropoutMask, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setGemm", nullptr, SetGemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
