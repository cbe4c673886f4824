"""Command-line peers built on rtcroom.client: `rtcroom send`, `rtcroom receive`."""
