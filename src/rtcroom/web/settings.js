// The call page's settings dialog: camera, microphone, speaker, relay only, shortcuts.
import {
  $,
  SOUND_PROCESSING,
  button,
  describe,
  fillDevices,
  grid,
  rememberDevice,
  select,
  setTileState,
  shortcutsOn,
  showNotice,
  speaker,
  withDevice,
} from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./ui.js").Tile} Tile
 */

/**
 * Pick camera, microphone and speaker; switch live and remember them.
 * @param {RoomClient} client
 * @param {Tile} local
 */
export function settings(client, local) {
  const dialog = /** @type {HTMLDialogElement} */ ($("settings-dialog"));
  const camera = select("camera-select");
  const microphone = select("microphone-select");
  const output = select("speaker-select");
  const relay = /** @type {HTMLInputElement} */ ($("relay-only"));
  const shortcuts = /** @type {HTMLInputElement} */ ($("shortcuts"));
  shortcuts.checked = shortcutsOn();
  shortcuts.addEventListener("change", () => localStorage.setItem("rtcroom.shortcuts", shortcuts.checked ? "1" : "0"));
  relay.checked = client.relayOnly;
  // Offered only where it can work: the server gives a TURN server.
  const relayNote = $("relay-note");
  const offerRelay = () => {
    relay.disabled = !client.hasRelay && !relay.checked;
    relayNote.hidden = !relay.disabled;
  };
  relay.addEventListener("change", () => {
    localStorage.setItem("rtcroom.relay", relay.checked ? "1" : "0");
    showNotice(
      relay.checked
        ? "Relay only takes effect when you join again: reload the page."
        : "Direct connections take effect when you join again: reload the page.",
      "info",
    );
  });

  const fill = async () => {
    offerRelay();
    const devices = await navigator.mediaDevices.enumerateDevices();
    const current = (/** @type {string} */ kind) =>
      client.localStream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId ?? "";
    fillDevices(camera, devices, "videoinput", current("video"), "No camera");
    fillDevices(microphone, devices, "audioinput", current("audio"), "No microphone");
    fillDevices(output, devices, "audiooutput", speaker.id, "Default speaker");
    if (!("setSinkId" in HTMLMediaElement.prototype)) output.disabled = true;
  };

  /** @param {"audio" | "video"} kind @param {string} deviceId @param {boolean} [reopen] */
  const switchDevice = async (kind, deviceId, reopen = false) => {
    // The same microphone with other sound processing: closed first, or the
    // browser hands back the open one as it is (Chromium does).
    if (reopen) client.localStream?.getTracks().find((t) => t.kind === kind)?.stop();
    try {
      const { stream, old } = await withDevice(client.localStream, kind, deviceId);
      // replaceTrack inside: the calls go on without renegotiation.
      client.setLocalStream(stream);
      old?.stop();
      local.video.srcObject = stream;
      setTileState(local, { noMedia: false });
      if (!reopen) rememberDevice(kind, deviceId);
    } catch (err) {
      showNotice(`Could not switch to that device: ${describe(err)}`);
    }
  };

  // The dialog opens at once; the lists fill when the browser has listed the
  // devices (Firefox lists them only to a page that has the focus).
  const opener = button("open-settings");
  opener.addEventListener("click", () => {
    dialog.showModal();
    fill().catch(() => {});
  });
  // Closed (Done or Escape): the focus goes back to the button that opened it.
  dialog.addEventListener("close", () => opener.focus());
  // Noise suppression, echo cancellation, automatic gain: the microphone
  // opened again with the new choice, the calls going on (replaceTrack).
  for (const [name, key] of Object.entries(SOUND_PROCESSING)) {
    const box = /** @type {HTMLInputElement} */ ($(`sound-${name}`));
    box.checked = localStorage.getItem(key) !== "0";
    box.addEventListener("change", () => {
      localStorage.setItem(key, box.checked ? "1" : "0");
      const audio = client.localStream?.getAudioTracks()[0];
      if (audio) switchDevice("audio", audio.getSettings().deviceId ?? "", true);
    });
  }
  camera.addEventListener("change", () => switchDevice("video", camera.value));
  microphone.addEventListener("change", () => switchDevice("audio", microphone.value));
  output.addEventListener("change", () => {
    speaker.id = output.value;
    localStorage.setItem("rtcroom.speaker", speaker.id);
    for (const video of grid.querySelectorAll("video:not([data-local])")) {
      /** @type {any} */ (video).setSinkId?.(speaker.id).catch(() => {});
    }
  });
}
