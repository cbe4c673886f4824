"""The selective forwarding unit behind rtcroom: Janus, from Debian (docs/sfu.md).

janus_config.py writes a hardened Janus configuration (`rtcroom sfu-config`);
janus.py is the client rtcroom speaks to Janus with (its WebSocket API).
"""
