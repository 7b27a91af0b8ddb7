#pragma once

#include "messages/type_ids.hpp"

#include <caf/atom.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace sluice {

/// Asks every actor of `targets` to drain and calls `done()` once all of them answered (an error
/// counts as an answer: drain is best effort at shutdown, undelivered data stays in the log).
template <class Self, class Handle, class F>
void drain_all(Self* self, const std::vector<Handle>& targets, F done) {
  if (targets.empty()) {
    done();
    return;
  }
  auto remaining = std::make_shared<size_t>(targets.size());
  auto shared_done = std::make_shared<F>(std::move(done));
  auto answered = [remaining, shared_done] {
    if (--*remaining == 0)
      (*shared_done)();
  };
  for (auto& t : targets)
    self->request(t, caf::infinite, drain_atom_v)
      .then([answered](caf::ok_atom) { answered(); }, [answered](caf::error&) { answered(); });
}

} // namespace sluice
