"""What the command-line peers run: `rtcroom send` / `receive` (files.py), `rtcroom bot` and `record` (media.py), on rtcroom.client."""
