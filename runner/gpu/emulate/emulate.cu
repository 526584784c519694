// Runs the CUDA build's host code on the CPU: kernels launched through cudaLaunchKernel run their
// item functions in loops; cuBLASLt is a plain column-major GEMM with transposes and leading dims.
#include <cstdlib>
#include <cstring>
#include <cstdio>
#define main capacity_main
#include "../capacity.cu"
#undef main

static dim3 g_grid, g_block;
static long launches = 0, gemms = 0;
extern "C" {
unsigned __cudaPushCallConfiguration(dim3 g, dim3 b, size_t, void*) { g_grid = g; g_block = b; return 0; }
cudaError_t __cudaPopCallConfiguration(dim3* g, dim3* b, size_t* shmem, void* stream) { *g = g_grid; *b = g_block; *shmem = 0; *(void**)stream = nullptr; return cudaSuccess; }
cudaError_t cudaConfigureCall(dim3 g, dim3 b, size_t, cudaStream_t) { g_grid = g; g_block = b; return cudaSuccess; }
void** __cudaRegisterFatBinary(void*) { static void* h; return &h; }
void __cudaRegisterFatBinaryEnd(void**) {}
void __cudaUnregisterFatBinary(void**) {}
void __cudaRegisterFunction(void**, const char*, char*, const char*, int, void*, void*, void*, void*, int*) {}
void __cudaRegisterVar(void**, char*, char*, const char*, int, size_t, int, int) {}
cudaError_t cudaMalloc(void** p, size_t size) { *p = std::malloc(size); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, enum cudaMemcpyKind) { std::memcpy(d, s, n); return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d >= 0 && d < 3 ? cudaSuccess : (cudaError_t)101; }
cudaError_t cudaGetDeviceCount(int* c) { *c = 3; return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t) { return "emulated error"; }
cudaError_t cudaMemGetInfo(size_t* f, size_t* t) { *f = *t = (size_t)1 << 40; return cudaSuccess; }
cudaError_t cudaLaunchKernel(const void* func, dim3 grid, dim3 block, void** args, size_t, cudaStream_t) {
  launches++;
  uint64_t count = *(uint64_t*)args[0];
  if (grid.x * (uint64_t)block.x == 0) return (cudaError_t)9;
  if (func == (const void*)generate_kernel) {
    for (uint64_t i = 0; i < count; i++) generate_item(i, *(PhiloxKey*)args[1], *(uint32_t*)args[2], *(int8_t**)args[3]);
  } else if (func == (const void*)product_kernel) {
    for (uint64_t i = 0; i < count; i++) product_item(i, *(uint32_t*)args[1], *(const int8_t**)args[2], *(const int8_t**)args[3], *(int32_t**)args[4]);
  } else if (func == (const void*)leaf_kernel) {
    for (uint64_t i = 0; i < count; i++) leaf_item(i, *(const int32_t**)args[1], *(uint64_t*)args[2], *(uint32_t*)args[3], *(uint8_t**)args[4]);
  } else if (func == (const void*)node_kernel) {
    for (uint64_t i = 0; i < count; i++) node_item(i, *(const uint8_t**)args[1], *(uint64_t*)args[2], *(uint8_t**)args[3]);
  } else {
    std::abort();
  }
  return cudaSuccess;
}

struct Layout { cudaDataType type; uint64_t rows, cols; int64_t ld; };
struct Desc { int transa = 0, transb = 0; };
cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) { *h = (cublasLtHandle_t)1; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t c, cudaDataType_t s) {
  if (c != CUBLAS_COMPUTE_32I || s != CUDA_R_32I) std::abort();
  *d = (cublasLtMatmulDesc_t) new Desc(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete (Desc*)d; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* buf, size_t size) {
  if (size != sizeof(cublasOperation_t)) std::abort();
  int v = *(const cublasOperation_t*)buf;
  if (a == CUBLASLT_MATMUL_DESC_TRANSA) ((Desc*)d)->transa = v; else if (a == CUBLASLT_MATMUL_DESC_TRANSB) ((Desc*)d)->transb = v; else std::abort();
  return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType t, uint64_t r, uint64_t c, int64_t ld) {
  *l = (cublasLtMatrixLayout_t) new Layout{t, r, c, ld}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete (Layout*)l; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) { *p = (cublasLtMatmulPreference_t)1; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void*, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t r[], int* found) {
  // Like int8 IMMA kernels: leading dimensions must be multiples of 4.
  *found = ((Layout*)A)->ld % 4 == 0 ? 1 : 0; r[0].workspaceSize = 1024; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void* alpha, const void* A, cublasLtMatrixLayout_t la, const void* B, cublasLtMatrixLayout_t lb, const void* beta, const void* C, cublasLtMatrixLayout_t lc, void* D, cublasLtMatrixLayout_t ld_, const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t) {
  gemms++;
  Desc* d = (Desc*)desc; Layout* a = (Layout*)la; Layout* b = (Layout*)lb; Layout* c = (Layout*)lc; Layout* dd = (Layout*)ld_;
  if (a->type != CUDA_R_8I || b->type != CUDA_R_8I || c->type != CUDA_R_32I || C != D || c != dd) std::abort();
  if (*(const int32_t*)alpha != 1 || *(const int32_t*)beta != 0) std::abort();
  uint64_t m = c->rows, n = c->cols, k = d->transa ? a->rows : a->cols;
  if ((d->transa ? a->cols : a->rows) != m || (d->transb ? b->rows : b->cols) != n || (d->transb ? b->cols : b->rows) != k) std::abort();
  if (a->ld * (int64_t)a->cols > 0x7fffffffLL || b->ld * (int64_t)b->cols > 0x7fffffffLL || c->ld * (int64_t)c->cols > 0x7fffffffLL) std::abort();
  const int8_t* pa = (const int8_t*)A; const int8_t* pb = (const int8_t*)B; int32_t* pd = (int32_t*)D;
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      int32_t sum = 0;
      for (uint64_t kk = 0; kk < k; kk++) {
        int32_t x = d->transa ? pa[i * a->ld + kk] : pa[kk * a->ld + i];
        int32_t y = d->transb ? pb[kk * b->ld + j] : pb[j * b->ld + kk];
        sum += x * y;
      }
      pd[j * c->ld + i] = sum;
    }
  return CUBLAS_STATUS_SUCCESS;
}
}

int main() {
  int rc = capacity_main();
  std::fprintf(stderr, "launches %ld gemms %ld\n", launches, gemms);
  return rc;
}
