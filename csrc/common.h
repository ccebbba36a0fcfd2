// Input checks shared by the CPU and CUDA kernels: errors name the argument and what was expected.
#pragma once
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#define MDRN_CHECK_FLOAT(name, t)                                                              \
  TORCH_CHECK((t).is_floating_point(), name ": expected a floating tensor, got ", (t).scalar_type())
#define MDRN_CHECK_DIM(name, t, d) \
  TORCH_CHECK((t).dim() == (d), name ": expected a ", d, "-D tensor, got shape ", (t).sizes())
#define MDRN_CHECK_SAME(a_name, a, b_name, b)                                                     \
  TORCH_CHECK((a).device() == (b).device(), b_name " is on ", (b).device(), " but " a_name " is on ", \
              (a).device());                                                                      \
  TORCH_CHECK((a).scalar_type() == (b).scalar_type(), b_name " has dtype ", (b).scalar_type(),      \
              " but " a_name " has ", (a).scalar_type())
