// Runs the bfloat16 tensor-core attention kernels (csrc/kernels/cuda/attention_tc.cu) on the CPU,
// one host thread per CUDA thread, through the warp emulator (warp_emulator.h); driven by
// tests/test_cuda_emulated.py, which compares the results with tapegrad's CPU attention.
//
//   attention_tc_check DIR N L S E Ev causal mask_row mask_col dropout_p seed scalar_loads
//
// reads DIR/{q,k,v,dout}.bin (float32, rounded to bfloat16 here) and, when DIR/mask.bin exists,
// DIR/mask.bin (float32) and DIR/mask_offsets.bin (int64); writes DIR/{out,lse,dq,dk,dv}.bin
// (float32). scalar_loads = 1 forces the element-by-element tile loads.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

// The kernels' dynamic shared memory (their `extern __shared__` array, declared in the file's
// anonymous namespace): one CTA runs at a time.
namespace tg::cuda::attention {
namespace {
alignas(16) unsigned char smem_raw[1 << 17];
}
}

#include "kernels/cuda/attention_tc.cu"

namespace {

using tg::bfloat16;
using namespace tg::cuda::attention;
using tg::cuda::ceil_div;

template <class T> std::vector<T> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return {};
  const std::streamsize bytes = f.tellg();
  std::vector<T> data(static_cast<size_t>(bytes) / sizeof(T));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(data.data()), bytes);
  return data;
}
void write_floats(const std::string& path, const std::vector<float>& data) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
}
std::vector<bfloat16> to_bf16(const std::vector<float>& x) { return std::vector<bfloat16>(x.begin(), x.end()); }
template <class T> std::vector<float> to_floats(const std::vector<T>& x) { return std::vector<float>(x.begin(), x.end()); }

// kernel() on every thread of every CTA of a 1-D grid, one CTA after another.
template <class Kernel> void run_grid(int64_t blocks, int threads, Kernel kernel) {
  emu::grid_dim = dim3(static_cast<unsigned>(blocks));
  emu::block_dim = dim3(static_cast<unsigned>(threads));
  for (int64_t b = 0; b < blocks; ++b) {
    emu::Block block(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        emu::thread_idx = dim3(static_cast<unsigned>(t));
        emu::block_idx = dim3(static_cast<unsigned>(b));
        emu::block = &block;
        kernel();
      });
    for (std::thread& th : pool) th.join();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 13) {
    std::fprintf(stderr, "usage: %s DIR N L S E Ev causal mask_row mask_col dropout_p seed scalar_loads\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  tg::AttentionArgs a{};
  a.N = std::atoll(argv[2]), a.L = std::atoll(argv[3]), a.S = std::atoll(argv[4]);
  a.E = std::atoll(argv[5]), a.Ev = std::atoll(argv[6]);
  a.causal = std::atoi(argv[7]) != 0;
  a.mask_row = std::atoll(argv[8]), a.mask_col = std::atoll(argv[9]);
  a.dropout_p = std::atof(argv[10]);
  a.seed = std::strtoull(argv[11], nullptr, 10), a.offset = 0;
  const bool scalar_loads = std::atoi(argv[12]) != 0;
  a.scale = 1.0 / std::sqrt(static_cast<double>(a.E));

  const std::vector<bfloat16> q = to_bf16(read_file<float>(dir + "/q.bin")), k = to_bf16(read_file<float>(dir + "/k.bin"));
  const std::vector<bfloat16> v = to_bf16(read_file<float>(dir + "/v.bin"));
  const std::vector<bfloat16> dout = to_bf16(read_file<float>(dir + "/dout.bin"));
  const std::vector<bfloat16> mask = to_bf16(read_file<float>(dir + "/mask.bin"));
  const std::vector<int64_t> mask_offsets = read_file<int64_t>(dir + "/mask_offsets.bin");
  a.mask = mask.empty() ? nullptr : mask.data();
  a.mask_offsets = mask_offsets.data();

  const int64_t rows = a.N * a.L;
  std::vector<bfloat16> out(rows * a.Ev, bfloat16(0.f)), dk(a.N * a.S * a.E, bfloat16(0.f)), dv(a.N * a.S * a.Ev, bfloat16(0.f));
  std::vector<float> lse(rows), drow(rows), dq_acc(rows * a.E, 0.f);
  const Params<bfloat16> p = params_of<bfloat16>(a);
  const bool vec = !scalar_loads && vector_loads(p, {q.data(), k.data(), v.data(), dout.data()});

  with_head_dim(padded_head_dim(a.E, a.Ev), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    run_grid(a.N * ceil_div(a.L, kTile), kTcThreads,
             [&] { forward_kernel<D>(p, q.data(), k.data(), v.data(), out.data(), lse.data(), vec); });
    for (int64_t r = 0; r < rows; ++r) {  // D_i = rowsum(dO * O), as attention_row_dot
      float acc = 0.f;
      for (int64_t c = 0; c < a.Ev; ++c) acc += float(dout[r * a.Ev + c]) * float(out[r * a.Ev + c]);
      drow[r] = acc;
    }
    run_grid(a.N * ceil_div(a.S, kTile), kTcThreads, [&] {
      backward_kernel<D>(p, q.data(), k.data(), v.data(), dout.data(), lse.data(), drow.data(), dq_acc.data(),
                         dk.data(), dv.data(), vec);
    });
  });
  std::vector<float> dq(dq_acc.size());
  for (size_t x = 0; x < dq.size(); ++x) dq[x] = float(bfloat16(dq_acc[x]));  // float_to<bf16>, as on the device
  write_floats(dir + "/out.bin", to_floats(out));
  write_floats(dir + "/lse.bin", lse);
  write_floats(dir + "/dq.bin", dq);
  write_floats(dir + "/dk.bin", to_floats(dk));
  write_floats(dir + "/dv.bin", to_floats(dv));
  std::printf("ok (%s loads)\n", vec ? "16-byte" : "scalar");
  return 0;
}
