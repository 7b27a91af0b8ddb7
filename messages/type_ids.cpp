#include "messages/type_ids.hpp"

#include <caf/actor_system_config.hpp>

namespace sluice {

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<event>("sluice::event");
  cfg.add_message_type<event_batch>("sluice::event_batch");
  cfg.add_message_type<checkpoint>("sluice::checkpoint");
  cfg.add_message_type<committed_batch>("sluice::committed_batch");
  cfg.add_message_type<dead_letter>("sluice::dead_letter");
  cfg.add_message_type<std::vector<dead_letter>>("sluice::dead_letters");
  cfg.add_message_type<member_info>("sluice::member_info");
  cfg.add_message_type<std::vector<member_info>>("sluice::member_infos");
  cfg.add_message_type<forward_batch>("sluice::forward_batch");
}

} // namespace sluice
