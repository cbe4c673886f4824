// What the tiles show of each connection: live statistics, and who speaks.
import { button, grid, loadStats, setTileState } from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./stats.js").StatsSample} StatsSample
 * @typedef {import("./ui.js").Tile} Tile
 */

/**
 * Live connection statistics over each remote tile, with a 60 s bitrate chart.
 * @param {RoomClient} client
 * @param {Map<string, Tile>} tiles
 */
export function statsOverlay(client, tiles) {
  const toggle = button("toggle-stats");
  /** @type {Map<string, StatsSample[]>} */
  const history = new Map();
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  const render = async () => {
    const { drawBitrateChart, formatBitrate, sampleStats } = await loadStats();
    for (const [id, peer] of client.peers) {
      const tile = tiles.get(id);
      if (!tile) continue;
      const samples = history.get(id) ?? [];
      // In SFU mode, what reaches us comes through the SFU's connection.
      const viaSfu = client.mode === "sfu" && client.sfu.subscriber !== null;
      const pc = viaSfu && client.sfu.subscriber ? client.sfu.subscriber : peer.pc;
      const sample = await sampleStats(pc, samples.at(-1) ?? null);
      samples.push(sample);
      if (samples.length > 61) samples.shift();
      history.set(id, samples);
      let overlay = /** @type {HTMLElement | null} */ (tile.figure.querySelector(".stats"));
      if (!overlay) {
        overlay = document.createElement("div");
        overlay.className = "stats";
        overlay.innerHTML = '<dl></dl><canvas width="160" height="36" aria-label="Bitrate in (green) and out (blue), last 60 s"></canvas>';
        tile.figure.append(overlay);
      }
      const rows = [
        ["Route", viaSfu ? "through the SFU" : "direct"],
        ["Connection", sample.localCandidate ? `${sample.localCandidate} ↔ ${sample.remoteCandidate}` : "…"],
        ["RTT", sample.rtt === null ? "–" : `${Math.round(sample.rtt * 1000)} ms`],
        ["In", formatBitrate(sample.bitrateIn)],
        ["Out", formatBitrate(sample.bitrateOut)],
        ["FPS", sample.fps === null ? "–" : String(Math.round(sample.fps))],
        ["Loss", sample.packetLoss === null ? "–" : `${(sample.packetLoss * 100).toFixed(1)} %`],
        ["Codec", sample.codec || "–"],
      ];
      const list = /** @type {HTMLElement} */ (overlay.querySelector("dl"));
      list.replaceChildren(
        ...rows.flatMap(([term, value]) => {
          const dt = document.createElement("dt");
          dt.textContent = term;
          const dd = document.createElement("dd");
          dd.textContent = value;
          dd.dataset.stat = term.toLowerCase();
          return [dt, dd];
        }),
      );
      drawBitrateChart(/** @type {HTMLCanvasElement} */ (overlay.querySelector("canvas")), samples.slice(1));
    }
  };
  // Sample all the time (the chart covers the last 60 s), show on demand.
  timer = setInterval(() => render().catch(() => {}), 1000);
  toggle.addEventListener("click", () => {
    const on = !document.body.classList.contains("show-stats");
    document.body.classList.toggle("show-stats", on);
    toggle.setAttribute("aria-pressed", String(on));
  });
  client.addEventListener("peerleft", (event) => history.delete(/** @type {CustomEvent} */ (event).detail.peer.id));
  client.addEventListener("close", () => timer && clearInterval(timer));
}

/**
 * Highlight the tile of whoever speaks: in a mesh, the loudest, from the
 * audio levels of the incoming RTP streams
 * (RTCRtpReceiver.getSynchronizationSources); in SFU mode, the latest to
 * start talking of those still talking, as the SFU says ("talking").
 * @param {RoomClient} client
 * @param {Map<string, Tile>} tiles
 */
export function activeSpeaker(client, tiles) {
  let current = "";
  /** @param {string} id */
  const highlight = (id) => {
    if (id === current) return;
    const before = tiles.get(current);
    const now = tiles.get(id);
    if (before) setTileState(before, { speaking: false });
    if (now) setTileState(now, { speaking: true });
    current = id;
    // The speaker view follows whoever spoke last (layout.js).
    if (id) grid.dispatchEvent(new CustomEvent("activespeaker", { detail: { id } }));
  };
  /** @type {string[]} who talks, latest last (SFU mode) */
  const talking = [];
  client.addEventListener("talking", (event) => {
    const { peer, talking: on } = /** @type {CustomEvent} */ (event).detail;
    const at = talking.indexOf(peer.id);
    if (at >= 0) talking.splice(at, 1);
    if (on) talking.push(peer.id);
    highlight(talking.at(-1) ?? "");
  });
  // The loudness of each peer's sound over the last interval (RMS from the
  // audio energy its inbound stream reports): a sample of the level now and
  // then would miss short sounds between two samples.
  /** @type {Map<string, {energy: number, duration: number}>} */
  const heard = new Map();
  setInterval(async () => {
    if (client.mode === "sfu") return;
    let loudest = "";
    let level = 0.02; // below this, nobody is speaking
    for (const [id, peer] of client.peers) {
      let energy = 0;
      let duration = 0;
      for (const receiver of peer.receivers()) {
        if (receiver.track.kind !== "audio") continue;
        (await receiver.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp") {
            energy += s.totalAudioEnergy ?? 0;
            duration += s.totalSamplesDuration ?? 0;
          }
        });
      }
      const before = heard.get(id);
      heard.set(id, { energy, duration });
      const rms = before && duration > before.duration ? Math.sqrt((energy - before.energy) / (duration - before.duration)) : 0;
      if (rms > level) {
        level = rms;
        loudest = id;
      }
    }
    for (const id of heard.keys()) if (!client.peers.has(id)) heard.delete(id);
    highlight(loudest);
  }, 300);
}

/** Loss (share of packets) or round trip (s) from which a connection is poor. */
const POOR_LOSS = 0.05;
const POOR_RTT = 0.4;

/**
 * Our connection's quality, measured every 2 s and told to the others
 * (ParticipantState.quality) once it holds for two measures in a row: "lost"
 * when every call is down, "poor" when most lose packets or answer slowly
 * (what the other side reports of what we send), else "good".
 * @param {RoomClient} client
 * @param {Tile} local our own tile, which shows it too
 */
export function connectionQuality(client, local) {
  /** @type {WeakMap<RTCPeerConnection, {lost: number, sent: number}>} */
  const totals = new WeakMap();
  let told = "good";
  let pending = "good";
  let times = 0;
  /** @param {RTCPeerConnection} pc */
  const measure = async (pc) => {
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") return "lost";
    let lost = 0;
    let sent = 0;
    let rtt = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "remote-inbound-rtp") {
        lost += s.packetsLost ?? 0;
        rtt = Math.max(rtt, s.roundTripTime ?? 0);
      } else if (s.type === "outbound-rtp") {
        sent += s.packetsSent ?? 0;
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        rtt = Math.max(rtt, s.currentRoundTripTime ?? 0);
      }
    });
    const before = totals.get(pc);
    totals.set(pc, { lost, sent });
    const loss = before && sent > before.sent ? Math.max(0, lost - before.lost) / (sent - before.sent) : 0;
    return loss > POOR_LOSS || rtt > POOR_RTT ? "poor" : "good";
  };
  setInterval(async () => {
    const pcs =
      client.mode === "sfu"
        ? [client.sfu.publisher].filter((pc) => pc !== null)
        : [...client.peers.values()].filter((peer) => !peer.tutorial).map((peer) => peer.pc);
    const open = /** @type {RTCPeerConnection[]} */ (pcs).filter((pc) => pc.signalingState !== "closed");
    if (!open.length) return;
    const verdicts = await Promise.all(open.map((pc) => measure(pc).catch(() => "good")));
    const now = verdicts.every((v) => v === "lost")
      ? "lost"
      : verdicts.filter((v) => v !== "good").length * 2 > verdicts.length
        ? "poor"
        : "good";
    times = now === pending ? times + 1 : 1;
    pending = now;
    if (times >= 2 && now !== told) {
      told = now;
      client.setState({ quality: /** @type {"good" | "poor" | "lost"} */ (now) });
      setTileState(local, { quality: now });
    }
  }, 2000);
}
