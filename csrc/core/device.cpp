#include "core/device.h"

namespace tg {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return {DeviceType::CPU, 0};
  if (s == "cuda") return {DeviceType::CUDA, 0};
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    TG_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos, ValueError,
             "device: invalid device string '", s, "'");
    return {DeviceType::CUDA, std::stoi(idx)};
  }
  throw ValueError(tg::str("device: expected 'cpu', 'cuda' or 'cuda:N', got '", s, "'"));
}

}  // namespace tg
