// The lobby: pick a name and a room, then go to /r/<room>?name=<name>.
import { ROOM_PATTERN, basePath } from "./rtcroom.js";

const words = ["amber", "brisk", "cedar", "dune", "ember", "fjord", "glade", "harbor", "iris",
  "juniper", "kelp", "lumen", "maple", "nova", "opal", "pine", "quartz", "river", "sage", "tide"];

/** A random, readable room name such as "cedar-opal-42". */
export function suggestRoom() {
  const pick = () => words[Math.floor(Math.random() * words.length)];
  return `${pick()}-${pick()}-${Math.floor(Math.random() * 90) + 10}`;
}

const form = /** @type {HTMLFormElement} */ (document.getElementById("join-form"));
const nameInput = /** @type {HTMLInputElement} */ (document.getElementById("name"));
const roomInput = /** @type {HTMLInputElement} */ (document.getElementById("room"));
nameInput.value = localStorage.getItem("rtcroom.name") ?? "";
// Back from a room's link without joining (?room=): that room again.
const linked = new URLSearchParams(location.search).get("room") ?? "";
roomInput.value = ROOM_PATTERN.test(linked) ? linked : suggestRoom();
if (nameInput.value) roomInput.focus();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const room = roomInput.value.trim();
  if (!name || !ROOM_PATTERN.test(room)) return;
  localStorage.setItem("rtcroom.name", name);
  location.assign(`${basePath()}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`);
});
