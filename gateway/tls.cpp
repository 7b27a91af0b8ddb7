// The gateway's TLS context (Asio's OpenSSL wrapper) from gateway.tls-cert / tls-key /
// tls-min-version.

#include "gateway/tls.hpp"

#include <boost/asio/ssl/context.hpp>

#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::gateway {

namespace ssl = boost::asio::ssl;

namespace {

/// The whole file, or an error naming `option`.
std::string read_pem(const std::string& option, const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw std::runtime_error(option + ": cannot read '" + path + "': " + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string reason(const boost::system::error_code& ec) {
  auto msg = ec.message();
  return msg.empty() ? std::string{"unknown OpenSSL error"} : msg;
}

} // namespace

bool tls_enabled(const config& cfg) noexcept {
  return !cfg.tls_cert.empty() || !cfg.tls_key.empty();
}

std::string check_tls(const config& cfg) {
  if (!tls_enabled(cfg))
    return {};
  try {
    detail::make_tls_context(cfg);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

namespace detail {

std::unique_ptr<ssl::context> make_tls_context(const config& cfg) {
  if (cfg.tls_cert.empty() || cfg.tls_key.empty())
    throw std::runtime_error(
      std::string{cfg.tls_cert.empty() ? "gateway.tls-cert" : "gateway.tls-key"}
      + " is empty: gateway.tls-cert and gateway.tls-key go together (both set: TLS; both empty: "
        "plain HTTP)");
  int min_version = 0;
  if (cfg.tls_min_version == "1.2")
    min_version = TLS1_2_VERSION;
  else if (cfg.tls_min_version == "1.3")
    min_version = TLS1_3_VERSION;
  else
    throw std::runtime_error("gateway.tls-min-version is \"" + cfg.tls_min_version
                             + "\"; use \"1.2\" or \"1.3\"");
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                   | ssl::context::no_sslv3 | ssl::context::single_dh_use
                   | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  auto* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, min_version) != 1)
    throw std::runtime_error("gateway.tls-min-version: OpenSSL refused TLS " + cfg.tls_min_version);
  // An encrypted key would make OpenSSL prompt on the terminal: answer with no password instead.
  ctx->set_password_callback(
    [](std::size_t, ssl::context::password_purpose) { return std::string{}; });
  boost::system::error_code ec;
  auto cert = read_pem("gateway.tls-cert", cfg.tls_cert);
  ctx->use_certificate_chain(boost::asio::buffer(cert), ec);
  if (ec)
    throw std::runtime_error("gateway.tls-cert: '" + cfg.tls_cert
                             + "' is not a PEM certificate chain: " + reason(ec));
  auto key = read_pem("gateway.tls-key", cfg.tls_key);
  ctx->use_private_key(boost::asio::buffer(key), ssl::context::pem, ec);
  if (ec)
    throw std::runtime_error("gateway.tls-key: '" + cfg.tls_key
                             + "' is not an unencrypted PEM private key matching gateway.tls-cert: "
                             + reason(ec));
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("gateway.tls-key: '" + cfg.tls_key
                             + "' does not match the certificate in gateway.tls-cert");
  return ctx;
}

} // namespace detail
} // namespace sluice::gateway
