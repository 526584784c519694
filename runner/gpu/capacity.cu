// gridlease capacity solver: answers capacity challenges (docs/inspections.md) on NVIDIA GPUs.
//
// One source, two builds:
//   nvcc -O3 -std=c++17 -o capacity capacity.cu -lcublasLt        CUDA: Philox on the device, the
//        product with cuBLASLt (CUDA_R_8I in, CUDA_R_32I out, CUBLAS_COMPUTE_32I: int8 tensor
//        cores), the Merkle tree (leaves and every level) on the device; one host thread per GPU.
//   g++ -x c++ -O2 -DGRIDLEASE_HOST_ONLY -o capacity capacity.cu   the same functions as plain
//        loops on the CPU, which the runner's tests compare byte for byte with the TypeScript
//        reference solver (runner/src/inspections/cpu-solver.ts).
//
// Protocol: JSON lines on stdin/stdout, one answer per request, in order.
//   {"op":"commit","challenge":{CapacityChallenge}} → {"ok":true,"commitment":{CapacityCommitment}}
//   {"op":"open","request":{OpeningRequest}}        → {"ok":true,"openings":{OpeningsAnswer}}
//   anything refused → {"ok":false,"code":"too_large|unknown_challenge|invalid","message":"…"}
// It keeps one committed challenge (its products fill the VRAM) and forgets it once opened. It
// exits at the end of stdin. Nothing but answers is written to stdout.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef GRIDLEASE_HOST_ONLY
#define GL_HD
#define GL_UNROLL
#else
#include <cublasLt.h>
#include <cuda_runtime.h>
#define GL_HD __host__ __device__
#define GL_UNROLL _Pragma("unroll")
#endif

// ── Protocol constants (src/inspections/{matrices,openings,merkle}.ts, src/contracts/inspections.ts)
static const uint32_t MAX_EXACT_N = 133144;  // floor((2^31 - 1) / 127^2)
static const uint32_t MIN_LEAF_SIZE = 16, MAX_LEAF_SIZE = 4096;
static const uint32_t MAX_OPENINGS = 256;
static const uint32_t MAX_GPU_COUNT = 16;
static const uint64_t MAX_LEAVES = 0x7fffffffULL;
static const char MATRIX_KEY_DOMAIN[] = "gridlease/capacity/v1/matrix";
static const char OPEN_KEY_DOMAIN[] = "gridlease/capacity/v1/open";
/** A request line is a few hundred bytes; anything longer is refused. */
static const size_t MAX_REQUEST_LINE = 64 * 1024;
#ifdef GRIDLEASE_HOST_ONLY
/** The host build multiplies naively (n³ on one core): it exists for tests, not for real challenges. */
static const uint32_t HOST_MAX_N = 2048;
#endif

// ── SHA-256 (FIPS 180-4), byte-streaming, usable on host and device ─────────────────────────────
struct Sha256 {
  uint32_t h[8];
  uint8_t buf[64];
  uint32_t used;
  uint64_t total;
};

GL_HD inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/** One compression of the 16 big-endian message words w[0..15]. */
GL_HD inline void sha256_compress(uint32_t h[8], const uint32_t* block) {
  const uint32_t K[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
      0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
      0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
      0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
      0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
      0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t w[64];
  GL_UNROLL
  for (int i = 0; i < 16; i++) w[i] = block[i];
  GL_UNROLL
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  GL_UNROLL
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

GL_HD inline void sha256_block(uint32_t h[8], const uint8_t* p) {
  uint32_t w[16];
  GL_UNROLL
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  sha256_compress(h, w);
}

GL_HD inline void sha256_init(Sha256& s) {
  s.h[0] = 0x6a09e667;
  s.h[1] = 0xbb67ae85;
  s.h[2] = 0x3c6ef372;
  s.h[3] = 0xa54ff53a;
  s.h[4] = 0x510e527f;
  s.h[5] = 0x9b05688c;
  s.h[6] = 0x1f83d9ab;
  s.h[7] = 0x5be0cd19;
  s.used = 0;
  s.total = 0;
}

GL_HD inline void sha256_byte(Sha256& s, uint8_t byte) {
  s.buf[s.used++] = byte;
  s.total++;
  if (s.used == 64) {
    sha256_block(s.h, s.buf);
    s.used = 0;
  }
}

GL_HD inline void sha256_update(Sha256& s, const uint8_t* data, uint64_t len) {
  for (uint64_t i = 0; i < len; i++) sha256_byte(s, data[i]);
}

GL_HD inline void sha256_final(Sha256& s, uint8_t out[32]) {
  uint64_t bits = s.total * 8;
  sha256_byte(s, 0x80);
  while (s.used != 56) sha256_byte(s, 0);
  for (int i = 7; i >= 0; i--) sha256_byte(s, (uint8_t)(bits >> (8 * i)));
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(s.h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(s.h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s.h[i] >> 8);
    out[4 * i + 3] = (uint8_t)s.h[i];
  }
}

// ── Philox-4x32-10 (Random123) ──────────────────────────────────────────────────────────────────
GL_HD inline void philox4x32(uint32_t x[4], uint32_t k0, uint32_t k1) {
  GL_UNROLL
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += 0x9e3779b9u;
      k1 += 0xbb67ae85u;
    }
    uint64_t p0 = (uint64_t)0xd2511f53u * x[0];
    uint64_t p1 = (uint64_t)0xcd9e8d57u * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
    x[0] = y0;
    x[1] = (uint32_t)p1;
    x[2] = y2;
    x[3] = (uint32_t)p0;
  }
}

struct PhiloxKey {
  uint32_t k0, k1;
};

/** Entry t (< 16) of a Philox block: byte t little-endian over x0..x3, as int8, -128 → 0. */
GL_HD inline int8_t entry_of(const uint32_t x[4], int t) {
  uint32_t byte = (x[t >> 2] >> (8 * (t & 3))) & 0xff;
  return byte == 0x80 ? (int8_t)0 : (int8_t)(uint8_t)byte;
}

/** Work item `item` of line generation: block b of line r, into lines[r·n + 16b ..]. */
GL_HD inline void generate_item(uint64_t item, PhiloxKey key, uint32_t n, int8_t* lines) {
  uint32_t blocks = (n + 15) / 16;
  uint32_t r = (uint32_t)(item / blocks);
  uint32_t b = (uint32_t)(item % blocks);
  uint32_t x[4] = {r, b, 0, 0};
  philox4x32(x, key.k0, key.k1);
  uint32_t first = 16 * b;
  uint32_t count = n - first < 16 ? n - first : 16;
  int8_t* out = lines + (uint64_t)r * n + first;
  for (uint32_t t = 0; t < count; t++) out[t] = entry_of(x, (int)t);
}

/** C[i][j] = row i of A · column j of B (both line-major), int32: the fallback product. */
GL_HD inline void product_item(uint64_t item, uint32_t n, const int8_t* a, const int8_t* b, int32_t* c) {
  uint64_t i = item / n, j = item % n;
  const int8_t* row = a + i * n;
  const int8_t* col = b + j * n;
  int32_t sum = 0;
  for (uint32_t k = 0; k < n; k++) sum += (int32_t)row[k] * (int32_t)col[k];
  c[item] = sum;
}

GL_HD inline uint32_t bswap32(uint32_t v) { return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24); }

/**
 * Leaf `leaf` of row-major C (int32 little-endian), hashed as SHA-256(0x00 ‖ bytes), straight from
 * the int32 values: the 0x00 prefix shifts the stream by one byte, so message word k is the top
 * byte of entry k−1 followed by the low three bytes of entry k (big-endian), and the word after
 * the last entry carries its top byte and the 0x80 that starts the padding.
 */
GL_HD inline void leaf_item(uint64_t leaf, const int32_t* c, uint64_t entries, uint32_t leaf_size, uint8_t* hashes) {
  const uint64_t start = leaf * leaf_size;
  const uint32_t count = entries - start < leaf_size ? (uint32_t)(entries - start) : leaf_size;
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint32_t w[16];
  int used = 0;
  uint32_t previous = 0;  // the prefix byte 0x00 stands in for entry −1's top byte
  for (uint32_t k = 0; k <= count; k++) {
    const uint32_t v = k < count ? (uint32_t)c[start + k] : 0;
    w[used++] = (previous & 0xff000000u) | (k < count ? bswap32(v) >> 8 : 0x00800000u);
    if (used == 16) {
      sha256_compress(h, w);
      used = 0;
    }
    previous = v;
  }
  if (used > 14) {
    while (used < 16) w[used++] = 0;
    sha256_compress(h, w);
    used = 0;
  }
  while (used < 14) w[used++] = 0;
  const uint64_t bits = (1 + 4 * (uint64_t)count) * 8;
  w[14] = (uint32_t)(bits >> 32);
  w[15] = (uint32_t)bits;
  sha256_compress(h, w);
  uint8_t* out = hashes + 32 * leaf;
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(h[i] >> 8);
    out[4 * i + 3] = (uint8_t)h[i];
  }
}

/** Node `i` of the next level: SHA-256(0x01 ‖ left ‖ right), or the odd last node promoted unchanged. */
GL_HD inline void node_item(uint64_t i, const uint8_t* level, uint64_t count, uint8_t* next) {
  const uint8_t* left = level + 64 * i;
  if (2 * i + 1 >= count) {
    for (int k = 0; k < 32; k++) next[32 * i + k] = left[k];
    return;
  }
  Sha256 s;
  sha256_init(s);
  sha256_byte(s, 0x01);
  sha256_update(s, left, 64);
  sha256_final(s, next + 32 * i);
}

// ── Device or host execution of the items above ─────────────────────────────────────────────────
#ifndef GRIDLEASE_HOST_ONLY
struct CudaError : std::runtime_error {
  bool memory;
  CudaError(const std::string& what, bool memory) : std::runtime_error(what), memory(memory) {}
};
static void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw CudaError(std::string(what) + ": " + cudaGetErrorString(err), err == cudaErrorMemoryAllocation);
}
static void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw CudaError(std::string(what) + ": cuBLASLt status " + std::to_string((int)st), st == CUBLAS_STATUS_ALLOC_FAILED);
}

#define GRID_STRIDE(count) for (uint64_t item = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; item < (count); item += (uint64_t)gridDim.x * blockDim.x)
__global__ void generate_kernel(uint64_t count, PhiloxKey key, uint32_t n, int8_t* lines) { GRID_STRIDE(count) generate_item(item, key, n, lines); }
__global__ void product_kernel(uint64_t count, uint32_t n, const int8_t* a, const int8_t* b, int32_t* c) { GRID_STRIDE(count) product_item(item, n, a, b, c); }
__global__ void leaf_kernel(uint64_t count, const int32_t* c, uint64_t entries, uint32_t leaf_size, uint8_t* hashes) {
  GRID_STRIDE(count) leaf_item(item, c, entries, leaf_size, hashes);
}
__global__ void node_kernel(uint64_t count, const uint8_t* level, uint64_t level_count, uint8_t* next) { GRID_STRIDE(count) node_item(item, level, level_count, next); }

static const unsigned THREADS = 256;
static unsigned blocks_for(uint64_t count) {
  uint64_t blocks = (count + THREADS - 1) / THREADS;
  return (unsigned)(blocks < (1u << 20) ? (blocks ? blocks : 1) : (1u << 20));
}
#define LAUNCH(kernel, count, ...)                                                \
  do {                                                                            \
    kernel<<<blocks_for(count), THREADS>>>((uint64_t)(count), __VA_ARGS__);       \
    cuda_check(cudaGetLastError(), #kernel);                                      \
  } while (0)

template <class T>
static T* dev_alloc(uint64_t count) {
  void* p = nullptr;
  const uint64_t bytes = count * sizeof(T);
  cuda_check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
  return (T*)p;
}
static void dev_free(void* p) {
  if (p) cudaFree(p);
}
static void to_host(void* dst, const void* src, uint64_t bytes) { cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy"); }
#else
#define LAUNCH(item_fn, count, ...)                                  \
  do {                                                               \
    for (uint64_t item = 0; item < (uint64_t)(count); item++) item_fn(item, __VA_ARGS__); \
  } while (0)
#define generate_kernel generate_item
#define product_kernel product_item
#define leaf_kernel leaf_item
#define node_kernel node_item
template <class T>
static T* dev_alloc(uint64_t count) {
  const uint64_t bytes = count * sizeof(T);
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return (T*)p;
}
static void dev_free(void* p) { std::free(p); }
static void to_host(void* dst, const void* src, uint64_t bytes) { std::memcpy(dst, src, bytes); }
#endif

// ── Errors answered on the wire ─────────────────────────────────────────────────────────────────
struct Refusal {
  const char* code;  // too_large | unknown_challenge | invalid
  std::string message;
};

// ── One GPU's committed product and tree ────────────────────────────────────────────────────────
struct GpuState {
  int32_t* c = nullptr;      // device: row-major C
  uint8_t* tree = nullptr;   // device: every level's hashes, leaves first
  std::vector<uint64_t> offsets;  // byte offset of each level in `tree`
  std::vector<uint64_t> counts;   // hashes in each level
  uint8_t root[32];
};

struct Committed {
  bool active = false;
  std::string challenge_id;
  uint8_t seed[32];
  uint32_t n = 0, gpu_count = 0, leaf_size = 0;
  std::vector<GpuState> gpus;
};

static Committed committed;
/** Set when a CUDA call failed other than for memory: the context may be unusable, so the process exits after answering. */
static std::atomic<bool> device_broken{false};

static void release(Committed& state) {
  for (GpuState& g : state.gpus) {
#ifndef GRIDLEASE_HOST_ONLY
    cudaSetDevice((int)(&g - &state.gpus[0]));
#endif
    dev_free(g.c);
    dev_free(g.tree);
    g.c = nullptr;
    g.tree = nullptr;
  }
  state.gpus.clear();
  state.active = false;
}

static PhiloxKey key_from_digest(const uint8_t d[32]) {
  PhiloxKey k;
  k.k0 = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
  k.k1 = (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
  return k;
}

/** key(g, M) = first 8 bytes of SHA-256(MATRIX_KEY_DOMAIN ‖ seed ‖ u8 M ‖ u8 g). */
static PhiloxKey matrix_key(const uint8_t seed[32], uint32_t gpu, char matrix) {
  Sha256 s;
  sha256_init(s);
  sha256_update(s, (const uint8_t*)MATRIX_KEY_DOMAIN, sizeof MATRIX_KEY_DOMAIN - 1);
  sha256_update(s, seed, 32);
  sha256_byte(s, (uint8_t)matrix);
  sha256_byte(s, (uint8_t)gpu);
  uint8_t d[32];
  sha256_final(s, d);
  return key_from_digest(d);
}

/** okey(g) = first 8 bytes of SHA-256(OPEN_KEY_DOMAIN ‖ seed ‖ open_seed ‖ u8 g). */
static PhiloxKey open_key(const uint8_t seed[32], const uint8_t open_seed[32], uint32_t gpu) {
  Sha256 s;
  sha256_init(s);
  sha256_update(s, (const uint8_t*)OPEN_KEY_DOMAIN, sizeof OPEN_KEY_DOMAIN - 1);
  sha256_update(s, seed, 32);
  sha256_update(s, open_seed, 32);
  sha256_byte(s, (uint8_t)gpu);
  uint8_t d[32];
  sha256_final(s, d);
  return key_from_digest(d);
}

static uint64_t leaf_count_for(uint32_t n, uint32_t leaf_size) { return ((uint64_t)n * n + leaf_size - 1) / leaf_size; }

/** Bytes of every tree level for `leaves` leaves (32 per hash). */
static uint64_t tree_bytes(uint64_t leaves) {
  uint64_t total = 0;
  for (uint64_t count = leaves;; count = (count + 1) / 2) {
    total += 32 * count;
    if (count == 1) break;
  }
  return total;
}

#ifndef GRIDLEASE_HOST_ONLY
static const size_t GEMM_WORKSPACE = 64u << 20;

#ifndef GRIDLEASE_GEMM_SPAN
/** The most elements one GEMM operand may span (a compile-time knob only so that tests can exercise the tiling). */
#define GRIDLEASE_GEMM_SPAN 0x7fffffffULL
#endif

/** Rows and columns of one GEMM tile: at most GRIDLEASE_GEMM_SPAN elements in any operand's span, in whole 256s. */
static uint32_t tile_for(uint32_t n) {
  const uint64_t limit = (uint64_t)(GRIDLEASE_GEMM_SPAN) / n;
  if (limit >= n) return n;
  const uint64_t tile = limit >= 256 ? limit / 256 * 256 : limit;
  return tile ? (uint32_t)tile : 1;
}

/** C = A·B with cuBLASLt int8 → int32; false when no cuBLASLt algorithm takes a tile's shape. */
static bool lt_product(uint32_t n, const int8_t* a_rows, const int8_t* b_cols, int32_t* c) {
  // cuBLAS is column-major. Row-major C is column-major Cᵀ = Bᵀ·Aᵀ: B's column-major buffer under
  // op T is Bᵀ, A's row-major buffer read column-major is Aᵀ (op N). This is the "TN" layout that
  // int8 tensor-core kernels take. Above n = 46,340 the product runs in tiles of C (rows p, columns
  // q of Cᵀ) so that no operand spans more than 2³¹ − 1 elements; every tile still sums all n terms.
  const uint32_t tile = tile_for(n);
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  void* workspace = nullptr;
  bool done = true;
  std::string failure;
  bool memory = false;
  try {
    lt_check(cublasLtCreate(&lt), "cublasLtCreate");
    lt_check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I), "cublasLtMatmulDescCreate");
    cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), "TRANSA");
    lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt), "TRANSB");
    lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    size_t ws = GEMM_WORKSPACE;
    lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), "workspace preference");
    cuda_check(cudaMalloc(&workspace, GEMM_WORKSPACE), "cudaMalloc workspace");
    for (uint32_t p0 = 0; p0 < n && done; p0 += tile) {
      for (uint32_t q0 = 0; q0 < n && done; q0 += tile) {
        const uint32_t rows = n - p0 < tile ? n - p0 : tile;  // of Cᵀ: columns p0.. of C
        const uint32_t cols = n - q0 < tile ? n - q0 : tile;  // of Cᵀ: rows q0.. of C
        cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
        cublasStatus_t st = cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, n, rows, n);  // k × m, op T
        if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, n, cols, n);  // k × n, op N
        if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, rows, cols, n);
        cublasLtMatmulHeuristicResult_t result;
        int found = 0;
        if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &result, &found);
        if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
          done = false;  // no algorithm for this shape (n not a multiple of 4, say): the plain kernel instead
        } else {
          const int32_t alpha = 1, beta = 0;
          int32_t* d = c + (uint64_t)q0 * n + p0;
          st = cublasLtMatmul(lt, op, &alpha, b_cols + (uint64_t)p0 * n, la, a_rows + (uint64_t)q0 * n, lb, &beta, d, lc, d, lc, &result.algo, workspace,
                              GEMM_WORKSPACE, 0);
        }
        if (lc) cublasLtMatrixLayoutDestroy(lc);
        if (lb) cublasLtMatrixLayoutDestroy(lb);
        if (la) cublasLtMatrixLayoutDestroy(la);
        if (done) lt_check(st, "cublasLtMatmul");
      }
    }
    if (done) cuda_check(cudaDeviceSynchronize(), "cublasLtMatmul");
  } catch (const CudaError& err) {
    failure = err.what();
    memory = err.memory;
  }
  if (workspace) cudaFree(workspace);
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (op) cublasLtMatmulDescDestroy(op);
  if (lt) cublasLtDestroy(lt);
  if (!failure.empty()) throw CudaError(failure, memory);
  return done;
}
#endif

/** Computes C_g and its tree on GPU g (device g in the CUDA build) into `out`. */
static void commit_gpu(const Committed& ch, uint32_t gpu, GpuState& out) {
#ifndef GRIDLEASE_HOST_ONLY
  cuda_check(cudaSetDevice((int)gpu), "cudaSetDevice");
#endif
  const uint32_t n = ch.n;
  const uint64_t entries = (uint64_t)n * n;
  const uint64_t leaves = leaf_count_for(n, ch.leaf_size);
  int8_t* a = nullptr;
  int8_t* b = nullptr;
  try {
    a = dev_alloc<int8_t>(entries);
    b = dev_alloc<int8_t>(entries);
    out.c = dev_alloc<int32_t>(entries);
    const uint64_t items = (uint64_t)n * ((n + 15) / 16);
    LAUNCH(generate_kernel, items, matrix_key(ch.seed, gpu, 'A'), n, a);
    LAUNCH(generate_kernel, items, matrix_key(ch.seed, gpu, 'B'), n, b);
#ifndef GRIDLEASE_HOST_ONLY
    cuda_check(cudaDeviceSynchronize(), "generate");
    if (!lt_product(n, a, b, out.c)) LAUNCH(product_kernel, entries, n, a, b, out.c);
#else
    LAUNCH(product_kernel, entries, n, a, b, out.c);
#endif
    dev_free(a);
    dev_free(b);
    a = b = nullptr;
    out.tree = dev_alloc<uint8_t>(tree_bytes(leaves));
    out.offsets.clear();
    out.counts.clear();
    uint64_t offset = 0;
    LAUNCH(leaf_kernel, leaves, out.c, entries, ch.leaf_size, out.tree);
    out.offsets.push_back(0);
    out.counts.push_back(leaves);
    for (uint64_t count = leaves; count > 1; count = (count + 1) / 2) {
      uint64_t next = offset + 32 * count;
      LAUNCH(node_kernel, (count + 1) / 2, out.tree + offset, count, out.tree + next);
      offset = next;
      out.offsets.push_back(offset);
      out.counts.push_back((count + 1) / 2);
    }
#ifndef GRIDLEASE_HOST_ONLY
    cuda_check(cudaDeviceSynchronize(), "merkle tree");
#endif
    to_host(out.root, out.tree + offset, 32);
  } catch (...) {
    dev_free(a);
    dev_free(b);
    throw;
  }
}

// ── Text encodings ──────────────────────────────────────────────────────────────────────────────
static void append_hex(std::string& out, const uint8_t* bytes, size_t len) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
}

static void append_base64(std::string& out, const uint8_t* p, size_t len) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
}

static bool parse_hex32(const std::string& text, uint8_t out[32]) {
  if (text.size() != 64) return false;
  for (size_t i = 0; i < 64; i++) {
    char ch = text[i];
    int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (v < 0) return false;
    if (i % 2 == 0) out[i / 2] = (uint8_t)(v << 4);
    else out[i / 2] |= (uint8_t)v;
  }
  return true;
}

static void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += (char)ch;
    } else if (ch < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", ch);
      out += esc;
    } else {
      out += (char)ch;
    }
  }
  out += '"';
}

// ── Minimal JSON reader: bounded depth, objects, arrays, strings, numbers, literals ──────────────
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  const Json* get(const char* name) const {
    if (kind != Object) return nullptr;
    for (const auto& f : fields)
      if (f.first == name) return &f.second;
    return nullptr;
  }
};

struct JsonReader {
  const std::string& s;
  size_t at = 0;
  explicit JsonReader(const std::string& s) : s(s) {}

  void space() {
    while (at < s.size() && (s[at] == ' ' || s[at] == '\t' || s[at] == '\r' || s[at] == '\n')) at++;
  }
  bool literal(const char* word) {
    size_t len = std::strlen(word);
    if (s.compare(at, len, word) != 0) return false;
    at += len;
    return true;
  }
  bool string(std::string& out) {
    if (at >= s.size() || s[at] != '"') return false;
    at++;
    while (at < s.size()) {
      unsigned char ch = (unsigned char)s[at++];
      if (ch == '"') return true;
      if (ch < 0x20) return false;
      if (ch != '\\') {
        out += (char)ch;
        continue;
      }
      if (at >= s.size()) return false;
      char esc = s[at++];
      switch (esc) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (at + 4 > s.size()) return false;
          unsigned code = 0;
          for (int i = 0; i < 4; i++) {
            char h = s[at++];
            int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (v < 0) return false;
            code = code * 16 + (unsigned)v;
          }
          // Only identifiers and hex are read from strings: anything beyond ASCII is kept as a marker byte.
          out += code < 0x80 ? (char)code : '\x7f';
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool value(Json& out, int depth) {
    if (depth > 8) return false;
    space();
    if (at >= s.size()) return false;
    char ch = s[at];
    if (ch == '{') {
      out.kind = Json::Object;
      at++;
      space();
      if (at < s.size() && s[at] == '}') return ++at, true;
      for (;;) {
        space();
        std::string name;
        if (!string(name)) return false;
        space();
        if (at >= s.size() || s[at++] != ':') return false;
        Json field;
        if (!value(field, depth + 1)) return false;
        if (out.fields.size() >= 64) return false;
        out.fields.emplace_back(std::move(name), std::move(field));
        space();
        if (at < s.size() && s[at] == ',') {
          at++;
          continue;
        }
        if (at < s.size() && s[at] == '}') return ++at, true;
        return false;
      }
    }
    if (ch == '[') {
      out.kind = Json::Array;
      at++;
      space();
      if (at < s.size() && s[at] == ']') return ++at, true;
      for (;;) {
        Json item;
        if (!value(item, depth + 1)) return false;
        if (out.items.size() >= 1024) return false;
        out.items.push_back(std::move(item));
        space();
        if (at < s.size() && s[at] == ',') {
          at++;
          continue;
        }
        if (at < s.size() && s[at] == ']') return ++at, true;
        return false;
      }
    }
    if (ch == '"') {
      out.kind = Json::String;
      return string(out.text);
    }
    if (literal("true")) return out.kind = Json::Bool, out.boolean = true, true;
    if (literal("false")) return out.kind = Json::Bool, out.boolean = false, true;
    if (literal("null")) return out.kind = Json::Null, true;
    size_t start = at;
    if (at < s.size() && s[at] == '-') at++;
    while (at < s.size() && ((s[at] >= '0' && s[at] <= '9') || s[at] == '.' || s[at] == 'e' || s[at] == 'E' || s[at] == '+' || s[at] == '-')) at++;
    if (at == start || at - start > 32) return false;
    std::string digits = s.substr(start, at - start);
    char* end = nullptr;
    out.number = std::strtod(digits.c_str(), &end);
    if (!end || *end != '\0') return false;
    out.kind = Json::Number;
    return true;
  }
  bool document(Json& out) {
    if (!value(out, 0)) return false;
    space();
    return at == s.size();
  }
};

static bool read_uint(const Json* v, uint64_t min, uint64_t max, uint64_t& out) {
  if (!v || v->kind != Json::Number) return false;
  double d = v->number;
  if (!(d >= (double)min && d <= (double)max) || d != (double)(uint64_t)d) return false;
  out = (uint64_t)d;
  return true;
}

static bool read_string(const Json* v, std::string& out) {
  if (!v || v->kind != Json::String) return false;
  out = v->text;
  return true;
}

static bool valid_challenge_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) return false;
  return true;
}

// ── Requests ────────────────────────────────────────────────────────────────────────────────────
static int device_count() {
#ifdef GRIDLEASE_HOST_ONLY
  return (int)MAX_GPU_COUNT;
#else
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
#endif
}

static std::string commit_request(const Json& request) {
  const Json* ch = request.get("challenge");
  if (!ch || ch->kind != Json::Object) throw Refusal{"invalid", "the request has no challenge"};
  std::string kind, id, seed;
  uint64_t n = 0, gpu_count = 0, leaf_size = 0;
  if (!read_string(ch->get("kind"), kind) || kind != "capacity") throw Refusal{"invalid", "the challenge is not a capacity challenge"};
  if (!read_string(ch->get("challenge_id"), id) || !valid_challenge_id(id)) throw Refusal{"invalid", "the challenge id is malformed"};
  Committed next;
  if (!read_string(ch->get("seed"), seed) || !parse_hex32(seed, next.seed)) throw Refusal{"invalid", "the seed is not 32 bytes of lower-case hex"};
  if (!read_uint(ch->get("n"), 1, MAX_EXACT_N, n)) throw Refusal{"invalid", "n must be an integer in [1, 133144]"};
  if (!read_uint(ch->get("gpu_count"), 1, MAX_GPU_COUNT, gpu_count)) throw Refusal{"invalid", "gpu_count must be an integer in [1, 16]"};
  if (!read_uint(ch->get("leaf_size"), MIN_LEAF_SIZE, MAX_LEAF_SIZE, leaf_size) || (leaf_size & (leaf_size - 1)) != 0)
    throw Refusal{"invalid", "leaf_size must be a power of two in [16, 4096]"};
  if (leaf_count_for((uint32_t)n, (uint32_t)leaf_size) > MAX_LEAVES) throw Refusal{"invalid", "too many leaves"};
#ifdef GRIDLEASE_HOST_ONLY
  if (n > HOST_MAX_N) throw Refusal{"too_large", "n = " + std::to_string(n) + " is above the host build's " + std::to_string(HOST_MAX_N)};
#endif
  int devices = device_count();
  if ((int)gpu_count > devices)
    throw Refusal{"invalid", "the challenge asks for " + std::to_string(gpu_count) + " GPUs; this machine has " + std::to_string(devices) + " CUDA devices"};
  next.challenge_id = id;
  next.n = (uint32_t)n;
  next.gpu_count = (uint32_t)gpu_count;
  next.leaf_size = (uint32_t)leaf_size;

  // One committed challenge at a time: its products take the VRAM.
  release(committed);
#ifndef GRIDLEASE_HOST_ONLY
  const uint64_t entries = n * n;
  const uint64_t need_product = 6 * entries + GEMM_WORKSPACE;
  const uint64_t need_tree = 4 * entries + tree_bytes(leaf_count_for((uint32_t)n, (uint32_t)leaf_size));
  const uint64_t need = need_product > need_tree ? need_product : need_tree;
  for (uint32_t g = 0; g < gpu_count; g++) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaSetDevice((int)g) != cudaSuccess || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess)
      throw Refusal{"invalid", "CUDA device " + std::to_string(g) + " cannot be used"};
    if (free_bytes < need)
      throw Refusal{"too_large", "n = " + std::to_string(n) + " needs " + std::to_string(need >> 20) + " MiB on GPU " + std::to_string(g) + ", which has " +
                                     std::to_string(free_bytes >> 20) + " MiB free"};
  }
#endif
  next.gpus.resize(gpu_count);
  std::vector<std::string> failures(gpu_count);
  std::vector<char> out_of_memory(gpu_count, 0);
  auto work = [&](uint32_t g) {
    try {
      commit_gpu(next, g, next.gpus[g]);
    } catch (const std::bad_alloc&) {
      failures[g] = "out of memory";
      out_of_memory[g] = 1;
#ifndef GRIDLEASE_HOST_ONLY
    } catch (const CudaError& err) {
      failures[g] = err.what();
      out_of_memory[g] = err.memory;
      if (!err.memory) device_broken = true;
#endif
    } catch (const std::exception& err) {
      failures[g] = err.what();
    }
  };
  std::vector<std::thread> threads;
  for (uint32_t g = 0; g < gpu_count; g++) threads.emplace_back(work, g);
  for (auto& t : threads) t.join();
  for (uint32_t g = 0; g < gpu_count; g++) {
    if (failures[g].empty()) continue;
    release(next);
    throw Refusal{out_of_memory[g] ? "too_large" : "invalid", "GPU " + std::to_string(g) + ": " + failures[g]};
  }
  next.active = true;
  committed = std::move(next);

  std::string out = "{\"ok\":true,\"commitment\":{\"challenge_id\":";
  append_json_string(out, id);
  out += ",\"roots\":[";
  for (uint32_t g = 0; g < gpu_count; g++) {
    if (g) out += ',';
    out += '"';
    append_hex(out, committed.gpus[g].root, 32);
    out += '"';
  }
  out += "]}}";
  return out;
}

static std::string open_request(const Json& request) {
  const Json* req = request.get("request");
  if (!req || req->kind != Json::Object) throw Refusal{"invalid", "the request has no opening request"};
  std::string id, open_seed_hex;
  uint8_t open_seed[32];
  uint64_t count = 0;
  if (!read_string(req->get("challenge_id"), id) || !valid_challenge_id(id)) throw Refusal{"invalid", "the challenge id is malformed"};
  if (!read_string(req->get("open_seed"), open_seed_hex) || !parse_hex32(open_seed_hex, open_seed)) throw Refusal{"invalid", "the open seed is not 32 bytes of lower-case hex"};
  if (!read_uint(req->get("count"), 1, MAX_OPENINGS, count)) throw Refusal{"invalid", "count must be an integer in [1, 256]"};
  if (!committed.active || committed.challenge_id != id) throw Refusal{"unknown_challenge", "no commitment for challenge " + id};

  const uint32_t n = committed.n, leaf_size = committed.leaf_size;
  const uint64_t entries = (uint64_t)n * n;
  std::string out;
  out.reserve(committed.gpu_count * count * (leaf_size * 6 + 2200) + 256);
  out += "{\"ok\":true,\"openings\":{\"challenge_id\":";
  append_json_string(out, id);
  out += ",\"gpus\":[";
  std::vector<uint8_t> leaf(4 * leaf_size);
  uint8_t hash[32];
  try {
    for (uint32_t g = 0; g < committed.gpu_count; g++) {
      GpuState& state = committed.gpus[g];
#ifndef GRIDLEASE_HOST_ONLY
      cuda_check(cudaSetDevice((int)g), "cudaSetDevice");
#endif
      PhiloxKey key = open_key(committed.seed, open_seed, g);
      out += g ? ",[" : "[";
      for (uint32_t t = 0; t < count; t++) {
        uint32_t x[4] = {t, 0, 0, 0};
        philox4x32(x, key.k0, key.k1);
        uint64_t row = x[0] % n, col = x[1] % n;
        uint64_t index = (row * n + col) / leaf_size;
        uint64_t start = index * leaf_size;
        uint64_t bytes = 4 * (entries - start < leaf_size ? entries - start : leaf_size);
        to_host(leaf.data(), state.c + start, bytes);
        out += t ? ",{\"leaf_index\":" : "{\"leaf_index\":";
        out += std::to_string(index);
        out += ",\"leaf\":\"";
        append_base64(out, leaf.data(), bytes);
        out += "\",\"path\":[";
        bool first = true;
        uint64_t at = index;
        for (size_t depth = 0; depth + 1 < state.counts.size(); depth++, at >>= 1) {
          uint64_t sibling = at ^ 1;
          if (sibling >= state.counts[depth]) continue;
          to_host(hash, state.tree + state.offsets[depth] + 32 * sibling, 32);
          out += first ? "\"" : ",\"";
          first = false;
          append_hex(out, hash, 32);
          out += '"';
        }
        out += "]}";
      }
      out += ']';
    }
#ifndef GRIDLEASE_HOST_ONLY
  } catch (const CudaError& err) {
    release(committed);
    if (!err.memory) device_broken = true;
    throw Refusal{"invalid", err.what()};
#endif
  } catch (...) {
    release(committed);
    throw;
  }
  out += "]}}";
  release(committed);  // opened once, then forgotten
  return out;
}

static std::string refusal(const char* code, const std::string& message) {
  std::string out = "{\"ok\":false,\"code\":\"";
  out += code;
  out += "\",\"message\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

static std::string answer(const std::string& line) {
  Json request;
  JsonReader reader(line);
  if (!reader.document(request) || request.kind != Json::Object) return refusal("invalid", "the request is not a JSON object");
  std::string op;
  if (!read_string(request.get("op"), op)) return refusal("invalid", "the request has no op");
  try {
    if (op == "commit") return commit_request(request);
    if (op == "open") return open_request(request);
    return refusal("invalid", "unknown op");
  } catch (const Refusal& r) {
    return refusal(r.code, r.message);
  } catch (const std::bad_alloc&) {
    return refusal("too_large", "out of host memory");
  } catch (const std::exception& err) {
    return refusal("invalid", err.what());
  }
}

/** Reads one line of at most MAX_REQUEST_LINE bytes; false at the end of input. `overlong` when it was longer. */
static bool read_line(std::string& line, bool& overlong) {
  line.clear();
  overlong = false;
  int ch;
  bool any = false;
  while ((ch = std::getchar()) != EOF) {
    any = true;
    if (ch == '\n') return true;
    if (line.size() < MAX_REQUEST_LINE) line += (char)ch;
    else overlong = true;
  }
  return any;
}

int main() {
#ifndef GRIDLEASE_HOST_ONLY
  // Create every device's context now, so that a challenge does not wait for it.
  for (int g = 0; g < device_count(); g++)
    if (cudaSetDevice(g) == cudaSuccess) cudaFree(nullptr);
#endif
  std::string line;
  bool overlong = false;
  while (read_line(line, overlong)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() && !overlong) continue;
    std::string out = overlong ? refusal("invalid", "the request line is too long") : answer(line);
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    // A failed kernel or library call can leave a CUDA context unusable: exit, and the runner starts a fresh process.
    if (device_broken) return 1;
  }
  release(committed);
  return 0;
}
