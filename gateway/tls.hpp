#pragma once

// TLS settings of the gateway: the server's OpenSSL context from gateway.tls-cert / tls-key /
// tls-min-version. No Beast here (the app checks the settings at start-up through `check_tls`).

#include "gateway/server.hpp"

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace sluice::gateway {

/// Whether `cfg` asks for TLS (gateway.tls-cert or gateway.tls-key set).
bool tls_enabled(const config& cfg) noexcept;

/// Loads the certificate and key as the server will; returns an empty string when they are usable
/// (or TLS is off), otherwise an error naming the option at fault and the reason, e.g.
/// `gateway.tls-key: cannot read '/etc/x.pem': No such file or directory`.
std::string check_tls(const config& cfg);

namespace detail {

/// The server's TLS context: the certificate chain and key of `cfg`, TLS `tls_min_version` or
/// newer, no renegotiation, compression or tickets. Throws `std::runtime_error` with the same
/// message as `check_tls` when they are unusable.
std::unique_ptr<boost::asio::ssl::context> make_tls_context(const config& cfg);

} // namespace detail
} // namespace sluice::gateway
