#pragma once

namespace sluice {

/// `sluice token hash [--generate] [--name=NAME] [--scopes=ingest,read,admin]
/// [--iterations=N]`: hashes a token for `[tokens.<name>]` (PBKDF2-HMAC-SHA256 with a random salt;
/// the token itself is never stored). Reads the token from the first line of stdin, or makes a
/// random 256-bit one with `--generate` and prints it once. Prints the section to paste into the
/// config file. `argv[1]` is "token". Returns the exit code (0 ok, 2 usage error).
int run_token_command(int argc, char** argv);

} // namespace sluice
