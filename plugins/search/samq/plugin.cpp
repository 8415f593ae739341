#include "samq.hpp"

SAQ_PLUGIN("samq", "1.0.0", "SAMQ: a generator of mixed-precision bit configurations trained by REINFORCE", reg) {
  reg.add<saq::plugins::Samq>("samq", "SAMQ: LSTM generator, sharpness-aware reward with a BOPs penalty, supernet "
                                      "trained with the pipeline's sharpness-aware optimizer");
}
