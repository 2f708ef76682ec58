#pragma once
#include "bindings/convert.h"
#include "ops/ops.h"

namespace tg {

struct ParsedIndex {
  std::vector<IndexItem> items;                     // basic part (index tensors become ':')
  std::vector<std::optional<Tensor>> advanced;      // per dim of the basic view
  std::vector<std::pair<int64_t, Shape>> mask_checks;  // bool masks: first dim covered, mask shape
};

ParsedIndex parse_index(const Tensor& self, const pybind11::handle& key);
void check_masks(const Tensor& view, const ParsedIndex& p);
Tensor getitem(const Tensor& self, const pybind11::handle& key);
void setitem(const Tensor& self, const pybind11::handle& key, const Tensor& value);

}  // namespace tg
