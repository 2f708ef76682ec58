// The CUDA runtime as the rest of tapegrad sees it. runtime.cu implements it in a CUDA build;
// no_cuda.cpp in a CPU-only build, where every call that needs a GPU raises.
#pragma once

namespace tg::cuda {

bool built();          // was this build compiled with CUDA?
bool is_available();   // built with CUDA and at least one usable GPU
int device_count();
void synchronize();

}  // namespace tg::cuda
