#pragma once

#include <string_view>

namespace phoenix::server {

// Tells the service manager how phoenix is doing ("READY=1", "STOPPING=1"), by systemd's
// sd_notify protocol: one datagram to the unix socket named in $NOTIFY_SOCKET. Does nothing
// without $NOTIFY_SOCKET (not started by systemd as Type=notify). Why not libsystemd: the
// protocol is one sendto, and phoenix runs where systemd is not.
void NotifyServiceManager(std::string_view state);

}  // namespace phoenix::server
