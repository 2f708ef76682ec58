// The CUDA runtime as the rest of tapegrad sees it. runtime.cu implements it in a CUDA build;
// no_cuda.cpp in a CPU-only build, where every call that needs a GPU raises.
#pragma once

namespace tg::cuda {

bool built();          // was this build compiled with CUDA?
bool is_available();   // built with CUDA and at least one usable GPU
int device_count();
void synchronize();

// The one stream all of tapegrad's work on `device` is queued on (a cudaStream_t, typed void*
// so that host-only files can include this header). Created on first use.
void* stream(int device);
// Raises RuntimeError naming `what` and the CUDA error when `err` (a cudaError_t) is not success.
void check(int err, const char* what);

}  // namespace tg::cuda
