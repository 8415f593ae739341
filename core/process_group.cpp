#define USE_C10D_GLOO  // ProcessGroupGloo.hpp declares the class only under it (Debian's libtorch has Gloo)
#include "process_group.hpp"

#include <cstdlib>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#ifdef SAQ_WITH_NCCL
#define USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace saq::host {

bool nccl_available() {
#ifdef SAQ_WITH_NCCL
  return true;
#else
  return false;
#endif
}

c10::intrusive_ptr<c10d::ProcessGroup> make_process_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                          const WorldSpec& world, std::chrono::milliseconds timeout,
                                                          c10::Device device, std::string& backend) {
#ifdef SAQ_WITH_NCCL
  if (device.is_cuda()) {
    backend = "nccl";
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, world.rank, world.world_size, options);
  }
#else
  (void)device;
#endif
  backend = "gloo";
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  const bool loopback = world.master_addr == "127.0.0.1" || world.master_addr == "localhost";
  if (ifname && *ifname) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (loopback) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, world.rank, world.world_size, options);
}

}  // namespace saq::host
