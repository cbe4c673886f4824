"""A hardened Janus configuration for rtcroom: `rtcroom sfu-config`.

Clients never speak to Janus: rtcroom's server is its only client. So its
API listens on one loopback or private address, every request carries the
`api_secret` that only rtcroom knows, the admin API is off (or on loopback
with a secret of its own), and only what rtcroom uses is loaded: the
VideoRoom plugin and the WebSocket transport. Rooms have string ids, as
rtcroom's rooms have names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# What Debian's janus 1.1.2 ships besides what rtcroom uses: not loaded.
UNUSED_PLUGINS = (
    "audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip",
    "streaming", "textroom", "videocall", "voicemail",
)  # fmt: skip
UNUSED_TRANSPORTS = ("http", "mqtt", "nanomsg", "pfunix", "rabbitmq")
UNUSED_LOGGERS = ("jsonlog",)
UNUSED_EVENT_HANDLERS = ("gelfevh", "mqttevh", "nanomsgevh", "rabbitmqevh", "sampleevh", "wsevh")

MIN_SECRET = 16


class SfuConfigError(ValueError):
    """A setting of `rtcroom sfu-config` is invalid; the message says which and why."""


def _private(address: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SfuConfigError(f"{what}: {address!r} is not an IP address") from None
    return ip


@dataclass(frozen=True)
class JanusSettings:
    """What `rtcroom sfu-config` is told; validated on creation."""

    # The Janus API (WebSocket) listens here only: loopback or a private address.
    api_ip: str
    api_secret: str
    api_port: int = 8188
    # The address Janus gathers ICE candidates on (the one clients reach);
    # None: every interface but loopback (Janus never uses loopback).
    media_ip: str | None = None
    # Behind 1:1 NAT (a cloud VM): the public address to put in candidates.
    public_ip: str | None = None
    min_port: int = 20000
    max_port: int = 40000
    # The admin API, on 127.0.0.1 with this secret; None: off.
    admin_secret: str | None = None
    admin_port: int = 7188
    # Where the configuration files are (janus -F); also what configs_folder says.
    folder: str = "/etc/janus"

    def __post_init__(self) -> None:
        api = _private(self.api_ip, "--api-ip")
        if not (api.is_loopback or api.is_private) or api.is_unspecified:
            raise SfuConfigError(
                f"--api-ip: {self.api_ip} is not a loopback or private address: Janus's API "
                "must never be reachable from the Internet (only rtcroom speaks to it)"
            )
        if len(self.api_secret) < MIN_SECRET:
            raise SfuConfigError(
                f"--sfu-secret / RTCROOM_SFU_SECRET: use at least {MIN_SECRET} characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.admin_secret is not None and len(self.admin_secret) < MIN_SECRET:
            raise SfuConfigError(f"--admin-secret: use at least {MIN_SECRET} characters")
        if self.admin_secret is not None and self.admin_secret == self.api_secret:
            raise SfuConfigError("--admin-secret: use a secret of its own, not the API's")
        for value, what in ((self.media_ip, "--media-ip"), (self.public_ip, "--public-ip")):
            if value is not None:
                _private(value, what)
        for port, what in ((self.api_port, "--api-port"), (self.admin_port, "--admin-port")):
            if not 1 <= port <= 65535:
                raise SfuConfigError(f"{what}: {port} is not a TCP port")
        if not 1024 <= self.min_port < self.max_port <= 65535:
            raise SfuConfigError(
                "--min-port / --max-port: a UDP range within 1024-65535, the first below the last"
            )
        for text, what in ((self.api_secret, "the API secret"), (self.folder, "--out")):
            if '"' in text or "\\" in text or "\n" in text:
                raise SfuConfigError(f"{what} may not hold quotes, backslashes or newlines")


def _disable(names: tuple[str, ...]) -> str:
    return ",".join(f"libjanus_{name}.so" for name in names)


def janus_files(settings: JanusSettings) -> dict[str, str]:
    """The configuration files, by name: janus.jcfg and the two it loads."""
    s = settings
    nat = []
    if s.media_ip:
        nat.append(f'\tice_enforce_list = "{s.media_ip}"\t# candidates on this address only')
    if s.public_ip:
        nat.append(f'\tnat_1_1_mapping = "{s.public_ip}"\t# the public address, behind 1:1 NAT')
    interface = ""
    if s.media_ip:
        interface = f'\tinterface = "{s.media_ip}"\t# the address in Janus\'s SDP\n'
    admin = ""
    if s.admin_secret:
        admin = f'\tadmin_secret = "{s.admin_secret}"\t# the admin API\'s own secret\n'
    core = f"""# Janus configuration for rtcroom, written by `rtcroom sfu-config`.
# Run: janus -F {s.folder} -C {s.folder}/janus.jcfg (docs/sfu.md has a systemd unit).
general: {{
\tconfigs_folder = "{s.folder}"
\tplugins_folder = "/usr/lib/x86_64-linux-gnu/janus/plugins"
\ttransports_folder = "/usr/lib/x86_64-linux-gnu/janus/transports"
\tevents_folder = "/usr/lib/x86_64-linux-gnu/janus/events"
\tloggers_folder = "/usr/lib/x86_64-linux-gnu/janus/loggers"
\tdebug_level = 4
\tserver_name = "rtcroom-sfu"
{interface}\tapi_secret = "{s.api_secret}"\t# every request must carry it: only rtcroom knows it
{admin}\tsession_timeout = 60\t# rtcroom keeps its sessions alive; dead ones go
\thide_dependencies = true\t# "info" does not list library versions
\tprotected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var"]
}}
media: {{
\trtp_port_range = "{s.min_port}-{s.max_port}"\t# open this UDP range in the firewall
}}
nat: {{
\tnice_debug = false
{chr(10).join(nat) + chr(10) if nat else ""}}}
plugins: {{
\tdisable = "{_disable(UNUSED_PLUGINS)}"
}}
transports: {{
\tdisable = "{_disable(UNUSED_TRANSPORTS)}"
}}
loggers: {{
\tdisable = "{_disable(UNUSED_LOGGERS)}"
}}
events: {{
\tbroadcast = false
\tdisable = "{_disable(UNUSED_EVENT_HANDLERS)}"
}}
"""
    admin_ws = "false"
    admin_lines = ""
    if s.admin_secret:
        admin_ws = "true"
        admin_lines = (
            f'\tadmin_ws_port = {s.admin_port}\n\tadmin_ws_ip = "127.0.0.1"\t# loopback only\n'
        )
    websockets = f"""# Janus's WebSocket transport for rtcroom, written by `rtcroom sfu-config`.
general: {{
\tjson = "compact"
\tws = true
\tws_port = {s.api_port}
\tws_ip = "{s.api_ip}"\t# the API listens on this address only
\twss = false\t# rtcroom speaks to Janus on a private network
}}
admin: {{
\tadmin_ws = {admin_ws}
{admin_lines}\tadmin_wss = false
}}
"""
    videoroom = """# Janus's VideoRoom plugin for rtcroom, written by `rtcroom sfu-config`.
general: {
\tstring_ids = true\t# room ids are rtcroom's room names
}
"""
    return {
        "janus.jcfg": core,
        "janus.transport.websockets.jcfg": websockets,
        "janus.plugin.videoroom.jcfg": videoroom,
    }
