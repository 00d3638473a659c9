// Operator schemas shared by dinotools._C (csrc/topk_propagate.cpp) and the emulated extension
// dinotools._C_emu (csrc/emu/module.cpp), so the two cannot drift apart.
#pragma once

// current [h,w,D], context [t,h,w,D], context_probs [t,h,w,M] -> [h,w,M] float32.
#define DINOTOOLS_TOPK_PROPAGATE_SCHEMA                                                         \
  "topk_propagate(Tensor current, Tensor context, Tensor context_probs, float size, str shape, " \
  "int topk, float temperature) -> Tensor"
