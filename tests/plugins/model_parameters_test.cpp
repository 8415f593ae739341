// Parameter counts with no quantizer attached, against published numbers: torchvision's model zoo (ResNet-18
// 11,689,512; ResNet-34 21,797,672; ResNet-50 25,557,032; MobileNetV2 3,504,872, all 1000 classes) and kuangliu's
// pytorch-cifar MobileNetV2 (2,296,922 at 10 classes).
#include "model_zoo.hpp"

using namespace saq;
using namespace saq::test;

TEST_CASE("resnet18/34/50 and mobilenetv2 have torchvision's parameter counts") {
  CHECK(count_parameters(*zoo_model("resnet18", kImageNet)) == 11689512);
  CHECK(count_parameters(*zoo_model("resnet34", kImageNet)) == 21797672);
  CHECK(count_parameters(*zoo_model("resnet50", kImageNet)) == 25557032);
  CHECK(count_parameters(*zoo_model("mobilenetv2", kImageNet)) == 3504872);
}

TEST_CASE("the classifier follows num_classes; width_mult rounds widths to multiples of 8 as torchvision") {
  // 100 classes: fc loses 900 rows of 512 weights + 1 bias: 11,689,512 − 900·513 = 11,227,812
  CHECK(count_parameters(*zoo_model("resnet18", DataInfo{{3, 224, 224}, 100, {}})) == 11227812);
  // torchvision 0.14's mobilenet_v2(width_mult=0.5) has 1,968,680 parameters
  CHECK(count_parameters(*zoo_model("mobilenetv2", kImageNet, "width_mult = 0.5")) == 1968680);
}

TEST_CASE("mobilenetv2_cifar has kuangliu's parameter count") {
  CHECK(count_parameters(*zoo_model("mobilenetv2_cifar", DataInfo{{3, 32, 32}, 10, {}})) == 2296922);
  // 100 classes: linear gains 90 rows of 1280 + 1: 2,296,922 + 90·1281 = 2,412,212
  CHECK(count_parameters(*zoo_model("mobilenetv2_cifar", kCifar100)) == 2412212);
}
