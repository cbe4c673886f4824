// The step before joining: a camera preview, the microphone's level, the
// devices, the name (unless the link or the token gives it), and whether to
// join with the camera or microphone off. Choices are remembered. The call
// page gets ready meanwhile (app.js): the socket is open and the call's
// modules loaded by the time "Join" is pressed.
import { basePath } from "./rtcroom.js";
import { $, button, describe, fillDevices, initials, select, rememberDevice, speaker, withDevice } from "./ui.js";

/**
 * @typedef {{name: string, stream: MediaStream | null, error: unknown}} Ready
 * What the person chose: a name, and the camera and microphone to start with
 * (their tracks disabled when chosen off), or why there are none.
 */

/** Remembered choices (localStorage). */
const KEYS = { micOff: "rtcroom.micOff", cameraOff: "rtcroom.cameraOff", name: "rtcroom.name" };

/**
 * Show the step and wait for "Join".
 * @param {{room: string, name: string, media: () => Promise<{stream: MediaStream | null, error: unknown}>,
 *          mayPublish: boolean}} options
 * `name`: given by the link or the token ("" to ask); `media` opens camera and
 * microphone (again, for a retry); `mayPublish`: false for a viewer's token.
 * @returns {Promise<Ready>}
 */
export async function prejoin({ room, name, media, mayPublish }) {
  const screen = $("prejoin");
  const preview = /** @type {HTMLVideoElement} */ ($("preview"));
  const previewTile = $("preview-tile");
  const nameInput = /** @type {HTMLInputElement} */ ($("prejoin-name"));
  const micOn = /** @type {HTMLInputElement} */ ($("prejoin-mic-on"));
  const cameraOn = /** @type {HTMLInputElement} */ ($("prejoin-camera-on"));
  const level = /** @type {HTMLMeterElement} */ ($("mic-level"));
  const note = $("prejoin-note");
  const retry = button("prejoin-retry");
  $("prejoin-room").textContent = room;
  document.body.classList.add("prejoin");
  screen.hidden = false;

  // The name: the link's or the token's is shown, not asked.
  const given = $("prejoin-given");
  nameInput.value = name || (localStorage.getItem(KEYS.name) ?? "");
  $("prejoin-name-row").hidden = !!name;
  given.hidden = !name;
  given.textContent = name ? `You join as ${name}.` : "";
  const showInitials = () => {
    /** @type {HTMLElement} */ (previewTile.querySelector(".avatar")).textContent = initials(nameInput.value || "?");
  };
  nameInput.addEventListener("input", showInitials);
  showInitials();

  micOn.checked = localStorage.getItem(KEYS.micOff) !== "1";
  cameraOn.checked = localStorage.getItem(KEYS.cameraOff) !== "1";

  /** @type {MediaStream | null} */
  let stream = null;
  /** @type {unknown} */
  let error = mayPublish ? null : "viewer";
  const meter = micLevel(level);
  const track = (/** @type {string} */ kind) => stream?.getTracks().find((t) => t.kind === kind);

  const show = () => {
    const video = track("video");
    const audio = track("audio");
    cameraOn.disabled = !video;
    micOn.disabled = !audio;
    if (video) video.enabled = cameraOn.checked;
    if (audio) audio.enabled = micOn.checked;
    previewTile.classList.toggle("camera-off", !video || !cameraOn.checked);
    preview.srcObject = stream;
    meter.watch(audio && micOn.checked ? audio : null);
    const denied = error instanceof DOMException && error.name === "NotAllowedError";
    note.textContent =
      error === "viewer"
        ? "Your link lets you watch and listen: you join without camera or microphone."
        : denied
          ? "Camera and microphone access is blocked. Allow it with the camera icon in the address bar (or the site's permissions), then try again. You can also join without them: the others will not see or hear you."
          : error
            ? `No camera or microphone could be opened (${describe(error)}). Plug one in and try again, or join without: the others will not see or hear you.`
            : "";
    note.hidden = !note.textContent;
    retry.hidden = !error || error === "viewer";
  };

  const open = async () => {
    if (!mayPublish) return show();
    ({ stream, error } = await media());
    show();
    await listDevices();
  };

  const camera = select("prejoin-camera");
  const microphone = select("prejoin-microphone");
  const output = select("prejoin-speaker");
  const listDevices = async () => {
    const devices = await navigator.mediaDevices?.enumerateDevices().catch(() => []) ?? [];
    const current = (/** @type {string} */ kind) => track(kind)?.getSettings().deviceId ?? "";
    fillDevices(camera, devices, "videoinput", current("video"), "No camera");
    fillDevices(microphone, devices, "audioinput", current("audio"), "No microphone");
    fillDevices(output, devices, "audiooutput", speaker.id, "Default speaker");
    if (!("setSinkId" in HTMLMediaElement.prototype)) output.disabled = true;
  };
  /** @param {"audio" | "video"} kind @param {string} deviceId */
  const switchDevice = async (kind, deviceId) => {
    try {
      const switched = await withDevice(stream, kind, deviceId);
      switched.old?.stop();
      stream = switched.stream;
      rememberDevice(kind, deviceId);
      show();
    } catch (err) {
      note.textContent = `Could not switch to that device: ${describe(err)}`;
      note.hidden = false;
    }
  };
  camera.addEventListener("change", () => switchDevice("video", camera.value));
  microphone.addEventListener("change", () => switchDevice("audio", microphone.value));
  output.addEventListener("change", () => {
    speaker.id = output.value;
    localStorage.setItem("rtcroom.speaker", speaker.id);
  });
  micOn.addEventListener("change", () => {
    localStorage.setItem(KEYS.micOff, micOn.checked ? "0" : "1");
    show();
  });
  cameraOn.addEventListener("change", () => {
    localStorage.setItem(KEYS.cameraOff, cameraOn.checked ? "0" : "1");
    show();
  });
  retry.addEventListener("click", () => {
    for (const t of stream?.getTracks() ?? []) t.stop();
    open();
  });

  // Escape, or the link: not joining after all; the lobby, with this room filled in.
  const lobby = `${basePath()}/?room=${encodeURIComponent(room)}`;
  /** @type {HTMLAnchorElement} */ ($("prejoin-lobby")).href = lobby;
  /** @param {KeyboardEvent} event */
  const escape = (event) => {
    if (event.key === "Escape" && !screen.hidden) location.assign(lobby);
  };
  document.addEventListener("keydown", escape);

  const opened = open();
  (name ? button("prejoin-join") : nameInput).focus();
  await new Promise((resolve) => {
    $("prejoin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!nameInput.value.trim()) return nameInput.focus();
      resolve(undefined);
    });
  });
  document.removeEventListener("keydown", escape);
  await opened;
  meter.stop();
  const chosen = name || nameInput.value.trim().slice(0, 64);
  if (!name) localStorage.setItem(KEYS.name, chosen);
  preview.srcObject = null;
  screen.hidden = true;
  document.body.classList.remove("prejoin");
  return { name: chosen, stream, error };
}

/**
 * The level of a microphone track on a <meter>, about ten times a second.
 * @param {HTMLMeterElement} level
 */
function micLevel(level) {
  /** @type {AudioContext | null} */
  let context = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  return {
    /** @param {MediaStreamTrack | null} track */
    watch(track) {
      clearInterval(timer);
      level.value = 0;
      if (!track) return;
      context ??= new AudioContext();
      context.resume().catch(() => {});
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      timer = setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const sample of samples) sum += sample * sample;
        // Loudness on a 0 to 1 scale: -60 dBFS to 0 dBFS.
        const db = 10 * Math.log10(sum / samples.length || 1e-9);
        level.value = Math.max(0, Math.min(1, (db + 60) / 60));
      }, 100);
    },
    stop() {
      clearInterval(timer);
      context?.close().catch(() => {});
    },
  };
}
