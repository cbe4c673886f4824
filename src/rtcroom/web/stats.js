// Connection statistics of a peer connection, summarised for people:
// candidate type, round-trip time, bitrates, frame rate, loss and codec
// (from the W3C webrtc-stats identifiers).

/**
 * @typedef {{
 *   time: number,
 *   localCandidate: string, remoteCandidate: string, rtt: number | null,
 *   bitrateIn: number, bitrateOut: number, fps: number | null,
 *   packetLoss: number | null, codec: string,
 *   bytesIn: number, bytesOut: number,
 * }} StatsSample
 */

/**
 * Take one sample; bitrates are computed against `previous` (bits per second).
 * @param {RTCPeerConnection} pc
 * @param {StatsSample | null} previous
 * @returns {Promise<StatsSample>}
 */
export async function sampleStats(pc, previous) {
  const report = await pc.getStats();
  /** @type {Map<string, any>} */
  const byId = new Map();
  report.forEach((stat) => byId.set(stat.id, stat));
  let pair = null;
  let bytesIn = 0;
  let bytesOut = 0;
  let packetsReceived = 0;
  let packetsLost = 0;
  let fps = null;
  let codec = "";
  for (const stat of byId.values()) {
    if (stat.type === "transport" && stat.selectedCandidatePairId) pair = byId.get(stat.selectedCandidatePairId);
    if (stat.type === "candidate-pair" && !pair && stat.nominated && stat.state === "succeeded") pair = stat;
    if (stat.type === "inbound-rtp") {
      bytesIn += stat.bytesReceived ?? 0;
      packetsReceived += stat.packetsReceived ?? 0;
      packetsLost += stat.packetsLost ?? 0;
      if (stat.kind === "video") {
        fps = stat.framesPerSecond ?? fps;
        codec = byId.get(stat.codecId)?.mimeType?.replace(/^video\//, "") ?? codec;
      }
    }
    if (stat.type === "outbound-rtp") bytesOut += stat.bytesSent ?? 0;
  }
  const time = performance.now();
  const seconds = previous ? (time - previous.time) / 1000 : 0;
  const rate = (/** @type {number} */ now, /** @type {number} */ before) =>
    seconds > 0 ? Math.max(0, ((now - before) * 8) / seconds) : 0;
  const total = packetsReceived + packetsLost;
  return {
    time,
    localCandidate: byId.get(pair?.localCandidateId)?.candidateType ?? "",
    remoteCandidate: byId.get(pair?.remoteCandidateId)?.candidateType ?? "",
    rtt: typeof pair?.currentRoundTripTime === "number" ? pair.currentRoundTripTime : null,
    bitrateIn: previous ? rate(bytesIn, previous.bytesIn) : 0,
    bitrateOut: previous ? rate(bytesOut, previous.bytesOut) : 0,
    fps,
    packetLoss: total > 0 ? packetsLost / total : null,
    codec,
    bytesIn,
    bytesOut,
  };
}

/** @param {number} bitsPerSecond */
export function formatBitrate(bitsPerSecond) {
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(1)} Mb/s`;
  return `${Math.round(bitsPerSecond / 1e3)} kb/s`;
}

/**
 * Draw the last samples' bitrates as two lines (in and out) on a canvas.
 * @param {HTMLCanvasElement} canvas
 * @param {StatsSample[]} samples
 */
export function drawBitrateChart(canvas, samples) {
  const context = canvas.getContext("2d");
  if (!context) return;
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const peak = Math.max(1, ...samples.map((s) => Math.max(s.bitrateIn, s.bitrateOut)));
  /**
   * @param {(s: StatsSample) => number} value
   * @param {string} color
   */
  const line = (value, color) => {
    context.strokeStyle = color;
    context.lineWidth = 1.5;
    context.beginPath();
    samples.forEach((sample, i) => {
      const x = samples.length > 1 ? (i / (samples.length - 1)) * width : width;
      const y = height - (value(sample) / peak) * (height - 2) - 1;
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  };
  line((s) => s.bitrateIn, "#4ade80");
  line((s) => s.bitrateOut, "#60a5fa");
}
