// mdrn_fast._C: an empty Python module whose loading registers the ops under torch.ops.mdrn_fast.
// Each op family declares its schemas in its own file with TORCH_LIBRARY_FRAGMENT.
#include <Python.h>
#include <torch/library.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(mdrn_fast, m) {
  m.def("built_with_cuda() -> bool", []() -> bool {
#ifdef WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
