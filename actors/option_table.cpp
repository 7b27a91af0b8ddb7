#include "actors/option_table.hpp"

#include <chrono>

namespace sluice {

std::string render_timespan(caf::timespan x) {
  using namespace std::chrono;
  auto ns = x.count();
  if (ns % duration_cast<nanoseconds>(minutes{1}).count() == 0 && ns != 0)
    return std::to_string(duration_cast<minutes>(x).count()) + "min";
  if (ns % duration_cast<nanoseconds>(seconds{1}).count() == 0 && ns != 0)
    return std::to_string(duration_cast<seconds>(x).count()) + "s";
  if (ns % duration_cast<nanoseconds>(milliseconds{1}).count() == 0)
    return std::to_string(duration_cast<milliseconds>(x).count()) + "ms";
  if (ns % 1000 == 0)
    return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

} // namespace sluice
