// The guest page: join a Space from a browser, hear it, chat, react, raise a hand, speak.
// Everything the room sends is shown with textContent, never as markup.

import { Connection } from "./connection.js";
import * as wire from "./wire.js";

/** @param {string} id @returns {HTMLElement} */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const field = (id) => /** @type {HTMLInputElement} */ ($(id));
/** @param {string} id */
const knob = (id) => /** @type {HTMLButtonElement} */ ($(id));
const player = () => /** @type {HTMLAudioElement} */ ($("audio"));
const NAME_KEY = "p2pspaces.name";
const SPEAKING_ROLES = new Set(["host", "cohost", "speaker"]);
const AUDIENCE_SHOWN = 200;
const CHAT_KEPT = 300;

const page = {
  key: null, conn: /** @type {Connection | null} */ (null), welcome: null, gateway: null, state: null, me: null,
  pc: null, sender: null, mic: null, counter: Date.now(),
  wantJoin: false, lastJoin: 0, out: false, speaking: new Set(),
  moving: false, volumes: new Map(), volumeIds: null,
  level: /** @type {AudioContext | null} */ (null),
};
page.wire = wire;
/** @type {any} */ (window).p2pspaces = page; // for people who look under the hood (and for the tests)

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
}

function secure() {
  return window.isSecureContext && location.protocol === "https:";
}

// --- start and the socket -----------------------------------------------------------------

async function start() {
  const params = new URLSearchParams(location.hash.slice(1));
  const handed = params.get("seed");
  if (params.get("name")) localStorage.setItem(NAME_KEY, params.get("name").slice(0, 32));
  if (params.get("join") === "1") page.wantJoin = true;
  if (location.hash) history.replaceState(null, "", location.pathname);
  page.key = await wire.loadKey(handed && /^[0-9a-f]{64}$/.test(handed) ? handed : null);
  field("name").value = localStorage.getItem(NAME_KEY) || "";
  $("join-form").addEventListener("submit", onJoin);
  $("chat-form").addEventListener("submit", onChat);
  $("tap-button").addEventListener("click", () => playAudio());
  $("again-button").addEventListener("click", () => comeBack());
  $("secure-note-go").addEventListener("click", () => toSecurePage());
  $("secure-note-cancel").addEventListener("click", () => { $("secure-note").hidden = true; });
  $("new-chat").addEventListener("click", () => {
    const log = $("chat");
    log.scrollTop = log.scrollHeight;
    $("new-chat").hidden = true;
  });
  $("chat").addEventListener("scroll", () => { if (atEnd($("chat"))) $("new-chat").hidden = true; });
  // A tab closed (or a phone's browser swiped away) leaves at once when it can say so; a page
  // that just lost its network keeps its place for the node's grace period instead.
  // Moving on purpose (to the secure page, to another node) keeps the place for the next page.
  window.addEventListener("pagehide", () => {
    if (page.me && !page.out && !page.moving) sendJson({ t: "bye" });
  });
  field("chat-input").maxLength = wire.CHAT_MAX;
  $("secure-link").addEventListener("click", (event) => { event.preventDefault(); goSecure(); });
  for (const emoji of wire.EMOJI) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = emoji;
    button.setAttribute("aria-label", "React " + emoji);
    button.addEventListener("click", () => send(wire.reaction(roomId(), epoch(), next(), emoji)));
    $("reactions").append(button);
  }
  connect();
}

function connect() {
  page.conn = new Connection(handle, lost);
  page.conn.open();
}

// The socket dropped: try again, or after three failures in a row carry on through another
// node of the same Space (the one serving this page is gone: a laptop closed), with this
// guest's key and name.  Returns whether to stop trying here.
function lost(failures) {
  if (page.out) return true;
  const others = (page.state && page.state.others) || [];
  if (failures >= 3 && others.length) {
    notice(`The node serving this page is gone; moving to ${others[0].name}'s node…`);
    page.out = true;
    location.href = elsewhere(others[0]);
    return true;
  }
  notice("Lost the connection to the node serving this page; trying again…");
  return false;
}

function sendJson(message) {
  if (page.conn) page.conn.sendJson(message);
}

async function send(message) {
  if (!page.conn || !(await page.conn.sendSigned(page.key, message))) {
    notice("Not connected to the node right now; try again in a moment.");
  }
}

function roomId() {
  return wire.unhex(page.state.room.id);
}

function epoch() {
  return page.state.room.epoch;
}

// The counter every message the guest signs carries: rising, and above any sent before a reload.
function next() {
  page.counter = Math.max(page.counter + 1, Date.now());
  return page.counter;
}

function act(kind, target = null) {
  return send(wire.request(roomId(), epoch(), next(), kind, target ? wire.unhex(target) : null));
}

// --- what the node says -------------------------------------------------------------------

async function handle(m) {
  switch (m.t) {
    case "welcome": return onWelcome(m);
    case "state": return onState(m);
    case "chat": return addChat(m.name, m.text, m.from);
    case "reaction": return onReaction(m);
    case "speaking":
      if (m.on) page.speaking.add(m.id); else page.speaking.delete(m.id);
      return renderPeople();
    case "error": return notice(m.reason);
    case "answer": return page.pc && page.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
    case "out": return onOut(m);
    case "closed": return m.code === "elsewhere" ? onElsewhere(m) : notice(m.reason);
    case "full": return onFull(m);
    default: return undefined;
  }
}

async function onWelcome(m) {
  page.welcome = m;
  $("chat").replaceChildren(); // the node sends its recent lines again after this hello
  page.gateway = wire.unhex(m.gateway);
  const others = m.others || [];
  if (m.guests + 1 >= 0.8 * m.max_guests && others.length) {
    $("elsewhere").querySelector("h2").textContent =
      `This node is busy (${m.guests} of ${m.max_guests} browser guests); these serve the same Space`;
    listOthers(others);
  }
  const sig = await wire.proveKey(page.key, wire.unhex(m.challenge), page.gateway);
  sendJson({ t: "hello", key: wire.hex(page.key.publicKey), sig });
  for (const [id, gain] of page.volumes) sendJson({ t: "volume", id, gain });
  if (!m.room) {
    $("title").textContent = "No Space here right now";
    $("subtitle").textContent = "The node serving this page is not in a Space. Keep this page open or ask the host for the address.";
  }
  page.gatewayName = m.gateway_name;
  $("secure-link").hidden = secure() || !m.https;
}

function onState(m) {
  const first = page.state === null;
  page.state = m;
  if (!m.room) return;
  const wasMember = page.me !== null;
  page.me = m.me;
  if (m.speaking) page.speaking = new Set(m.speaking);
  $("gateway").textContent = `Served by ${page.gatewayName}'s node · ${m.guests} of ${page.welcome.max_guests} browser guests`;
  $("title").textContent = m.room.title;
  $("rec").hidden = !m.room.recording;
  const host = m.members.find((x) => x.id === m.room.host);
  $("subtitle").textContent = `Hosted by ${host ? host.name : "someone"} · ${m.members.length} in the room`;
  if (!page.me && m.blocked) {
    $("room").hidden = true;
    $("join").hidden = true;
    $("again").hidden = true;
    notice("A host blocked you from this Space, so this page cannot join it.");
    return;
  }
  if (!page.me) {
    $("room").hidden = true;
    $("join").hidden = page.out;
    $("join-help").textContent = secure()
      ? "You will hear the room, chat, react, raise your hand, and speak when invited."
      : "You will hear the room, chat, react and raise your hand. To speak, use the secure page (link below).";
    // Out without being put out (our node went away and the room dropped its guests): back in.
    if (page.wantJoin && Date.now() - page.lastJoin > 1500) joinNow();
    return;
  }
  page.wantJoin = true;
  $("join").hidden = true;
  $("room").hidden = false;
  if (first || !wasMember) notice("");
  if (!page.pc) startAudio().catch((err) => notice("Could not start the audio: " + err));
  renderMe();
  renderPeople();
}

function onReaction(m) {
  addChat(m.name, m.emoji, m.from, true);
}

function onOut(m) {
  page.out = true;
  page.wantJoin = false;
  const blocked = m.code === "block";
  const words = {
    leave: "You left the Space.",
    remove: "A host removed you from the Space. You may join again.",
    block: "A host blocked you from this Space; you cannot join it again.",
  };
  notice(words[m.code] || `You are out of the Space: ${m.reason}.`);
  stopAudio();
  page.me = null;
  $("room").hidden = true;
  $("join").hidden = true;
  $("again").hidden = blocked;
  $("subtitle").textContent = blocked ? "" : "You are not in the Space now.";
}

// Out of the room (left, removed, a lost link): the same page, the same key, back in.
function comeBack() {
  location.hash = "join=1";
  location.reload();
}

// The same guest opened the Space in another tab: that one carries on, this one stops (two
// tabs would take the guest's place from each other for ever).
function onElsewhere(m) {
  page.out = true;
  page.wantJoin = false;
  stopAudio();
  $("room").hidden = true;
  $("join").hidden = true;
  notice("This Space is open in another tab or page, which carries on; this one has stopped.");
  $("again-button").textContent = "Use this tab instead";
  $("again").hidden = false;
}

// A busy node sends browsers on to a less busy node of the same Space, so fifty phones do not
// all land on the host's laptop.  The guest's key and name go along in the fragment.
function elsewhere(other) {
  return handOver(secure() ? other.https : other.http, page.wantJoin || !!page.me);
}

// ``url`` with this guest's key, name and whether to join on arrival in its fragment (which
// the browser never sends to any server).
function handOver(url, join) {
  const params = new URLSearchParams();
  const seed = page.key.handoff();
  if (seed) params.set("seed", seed);
  params.set("name", localStorage.getItem(NAME_KEY) || "");
  if (join) params.set("join", "1");
  return `${url}#${params.toString()}`;
}

function listOthers(others) {
  const list = $("others");
  list.replaceChildren();
  for (const other of others) {
    const item = document.createElement("li");
    const a = document.createElement("a");
    a.href = elsewhere(other);
    a.addEventListener("click", () => { page.moving = true; });
    a.textContent = `${other.name}'s node (${other.guests} of ${other.max_guests} browser guests)`;
    item.append(a);
    list.append(item);
  }
  $("elsewhere").hidden = others.length === 0;
}

function onFull(m) {
  page.out = true;
  const others = m.others || [];
  listOthers(others);
  if (others.length) {
    notice(`${m.reason}. Taking you to ${others[0].name}'s node, which serves the same Space…`);
    setTimeout(() => { location.href = elsewhere(others[0]); }, 1500);
  } else {
    notice(`${m.reason}, and no other node of this Space has room for browsers. Try again later.`);
  }
}

// --- joining, chat ------------------------------------------------------------------------

// Why a name cannot be used, in words (the room's own rules, checked before sending).
function nameProblem(name) {
  if (!/[^\p{C}\p{Z}\p{M}]/u.test(name)) return "A name needs at least one visible character.";
  if (/[\p{Cc}\p{Cf}]/u.test(name)) return "A name cannot contain invisible or control characters.";
  if ([...name].length > wire.NAME_MAX) return `A name has at most ${wire.NAME_MAX} characters.`;
  return null;
}

function onJoin(event) {
  event.preventDefault();
  const name = field("name").value.trim();
  if (!name) return;
  const problem = nameProblem(name);
  if (problem) {
    notice(problem);
    return;
  }
  localStorage.setItem(NAME_KEY, name);
  page.wantJoin = true;
  playAudio(); // a tap: browsers let the room's audio play after one
  joinNow();
}

function joinNow() {
  const name = (localStorage.getItem(NAME_KEY) || field("name").value || "").trim();
  if (!name || !page.state || !page.state.room) return;
  page.lastJoin = Date.now();
  knob("join-button").disabled = true;
  setTimeout(() => { knob("join-button").disabled = false; }, 3000);
  send(wire.request(roomId(), epoch(), next(), "join", page.gateway, name));
}

function onChat(event) {
  event.preventDefault();
  const input = field("chat-input");
  const text = input.value.trim();
  if (!text || !page.me) return;
  send(wire.chat(roomId(), epoch(), next(), text));
  input.value = "";
}

// Whether someone else in the room goes by ``name``.
function shared(name, id) {
  const wanted = name.toLowerCase();
  return !!page.state && (page.state.members || []).some(
    (m) => m.id !== id && m.name.toLowerCase() === wanted);
}

function addChat(name, text, from, isReaction = false) {
  const item = document.createElement("li");
  const who = document.createElement("span");
  who.className = "author";
  const author = page.state && (page.state.members || []).find((m) => m.id === from);
  who.textContent = author && shared(name, from) ? `${name} (${author.fp})` : name;
  const what = document.createElement("span");
  what.textContent = text;
  if (isReaction) item.className = "event";
  item.append(who, what);
  const log = $("chat");
  const following = atEnd(log); // someone reading back is not yanked down: they get a cue
  log.append(item);
  while (log.children.length > CHAT_KEPT) log.firstChild.remove();
  if (following) log.scrollTop = log.scrollHeight;
  else $("new-chat").hidden = false;
}

function atEnd(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

// --- the people ---------------------------------------------------------------------------

function myself() {
  return page.state && page.state.members.find((x) => x.id === page.me);
}

function button(label, run, secondary = false) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (secondary) b.className = "secondary";
  b.addEventListener("click", run);
  return b;
}

function renderMe() {
  const me = myself();
  if (!me) return;
  const controls = $("controls");
  controls.replaceChildren();
  const onStage = SPEAKING_ROLES.has(me.role);
  let text;
  if (onStage && !secure()) {
    text = "You are on stage. Browsers give a page the microphone only over HTTPS: open the secure page to speak.";
    controls.append(button("Open the secure page to speak", goSecure));
    controls.append(button("Leave the stage", () => act("make_listener"), true));
  } else if (onStage) {
    text = me.muted ? "You are on stage, muted." : "You are on stage: the room hears you.";
    controls.append(button(me.muted ? "Unmute" : "Mute", () => act(me.muted ? "unmute" : "mute")));
    controls.append(button("Leave the stage", () => act("make_listener"), true));
    controls.append(headphonesToggle(me));
  } else if (me.invited) {
    text = "You are invited to speak.";
    if (secure()) {
      controls.append(button("Accept", () => act("accept_invite")));
    } else {
      text += " Speaking needs the secure page; your invitation goes with you.";
      controls.append(button("Open the secure page to accept", goSecure));
    }
    controls.append(button("Decline", () => act("decline_invite"), true));
  } else if (me.hand) {
    text = "Your hand is raised.";
    controls.append(button("Lower hand", () => act("lower_hand"), true));
  } else {
    text = "You are listening.";
    controls.append(button("✋ Raise hand", () => act("raise_hand")));
  }
  controls.append(button("Leave", () => leave(), true));
  $("you-state").textContent = text;
  followMic(me, onStage);
}

function chip(member) {
  const item = document.createElement("li");
  if (page.speaking.has(member.id)) item.className = "speaking";
  const dot = document.createElement("span");
  dot.className = "dot";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = member.name + (member.id === page.me ? " (you)" : "");
  const fp = document.createElement("span");
  fp.className = "fp";
  // Names can be copied, keys cannot: namesakes get the whole short fingerprint.
  fp.textContent = shared(member.name, member.id) ? member.fp : member.fp.slice(0, 4);
  fp.title = `Fingerprint ${member.fp}`;
  item.append(dot, who, fp);
  const tags = [];
  if (member.role === "host") tags.push("host");
  if (member.role === "cohost") tags.push("co-host");
  if (member.muted) tags.push("muted");
  if (member.hand) tags.push("✋");
  if (member.guest) tags.push("browser");
  if (tags.length) {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = tags.join(" · ");
    item.append(tag);
  }
  return item;
}

function renderPeople() {
  if (!page.state || !page.state.members) return;
  const order = { host: 0, cohost: 1, speaker: 2, listener: 3 };
  const members = [...page.state.members].sort((a, b) => order[a.role] - order[b.role]);
  const stage = members.filter((m) => SPEAKING_ROLES.has(m.role));
  const audience = members.filter((m) => !SPEAKING_ROLES.has(m.role));
  $("stage").replaceChildren(...stage.map(chip));
  renderVolumes(stage.filter((m) => m.id !== page.me));
  const shown = audience.slice(0, AUDIENCE_SHOWN).map(chip);
  if (audience.length > AUDIENCE_SHOWN) {
    const more = document.createElement("li");
    more.textContent = `and ${audience.length - AUDIENCE_SHOWN} more`;
    shown.push(more);
  }
  $("audience").replaceChildren(...shown);
  $("audience-title").textContent = `Listening (${audience.length})`;
}

// One slider per person on stage (for this guest only: the node mixes this guest's audio).
// Rebuilt only when the stage changes, so that a slider in use is not replaced under a finger.
function renderVolumes(speakers) {
  const ids = speakers.map((m) => m.id).join();
  $("volumes").hidden = speakers.length === 0;
  if (ids === page.volumeIds) return;
  page.volumeIds = ids;
  const rows = speakers.map((member) => {
    const label = document.createElement("label");
    label.className = "volume";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = "200";
    slider.step = "25";
    slider.value = String(Math.round(100 * (page.volumes.get(member.id) ?? 1)));
    slider.setAttribute("aria-label", `Volume of ${member.name}`);
    const shown = document.createElement("span");
    shown.textContent = `${member.name}: ${slider.value}%`;
    slider.addEventListener("input", () => {
      shown.textContent = `${member.name}: ${slider.value}%`;
      page.volumes.set(member.id, Number(slider.value) / 100);
      sendJson({ t: "volume", id: member.id, gain: Number(slider.value) / 100 });
    });
    label.append(shown, slider);
    return label;
  });
  $("volume-list").replaceChildren(...rows);
}

async function leave() {
  page.wantJoin = false;
  await act("leave");
}

// --- audio --------------------------------------------------------------------------------

async function startAudio() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  page.pc = pc;
  const transceiver = pc.addTransceiver("audio", { direction: "sendrecv" });
  page.sender = transceiver.sender;
  pc.ontrack = (event) => {
    const stream = event.streams[0] || new MediaStream([event.track]);
    player().srcObject = stream;
    listenLevel(stream);
    playAudio();
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" && page.pc === pc) {
      page.pc = null;
      notice("The audio connection failed; reconnecting…");
      setTimeout(() => { if (!page.pc && page.me) startAudio(); }, 1000);
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  sendJson({ t: "offer", sdp: pc.localDescription.sdp });
  if (page.mic) await page.sender.replaceTrack(page.mic.getAudioTracks()[0]);
}

// The node's WebRTC stack takes no trickled candidates, so the offer carries them: send it
// once gathering completes, or once a first candidate is in and a moment has passed (a LAN
// has no other kind worth waiting for; the node also learns the page's address from its
// connectivity checks).
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate) setTimeout(resolve, 100);
    });
    setTimeout(resolve, 2000);
  });
}

// "Heard by": once a second while someone speaks, tell the node how loud this page plays the
// room (the loudest 20 ms of the last second), so that speakers see who hears them.
const HEARD_EVERY_MS = 1000;
const LEVEL_EVERY_MS = 50;

function listenLevel(stream) {
  if (page.level) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024; // about 20 ms at 48 kHz
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let loudest = 0;
  page.level = context;
  setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    loudest = Math.max(loudest, Math.sqrt(sum / samples.length));
  }, LEVEL_EVERY_MS);
  setInterval(() => {
    if (page.me && page.speaking.size && loudest > 0) {
      sendJson({ t: "heard", level: Math.max(-127, 20 * Math.log10(loudest)) });
    }
    loudest = 0;
  }, HEARD_EVERY_MS);
}

function playAudio() {
  if (page.level && page.level.state === "suspended") page.level.resume();
  const audio = player();
  if (!audio.srcObject) return;
  audio.play().then(() => { $("tap").hidden = true; }, () => { $("tap").hidden = false; });
}

/** Every render asks for the microphone to follow the state; the asks run one after another, so
 * a render during a slow permission prompt cannot open a second microphone that nobody stops. */
let micQueue = Promise.resolve();

function followMic(me, onStage) {
  micQueue = micQueue.then(() => fitMic(me, onStage), () => fitMic(me, onStage));
  return micQueue;
}

async function fitMic(me, onStage) {
  const wanted = onStage && secure();
  if (wanted && !page.mic) {
    try {
      // Echo cancellation keeps a phone's loudspeaker out of the room, but it also dulls the
      // voice; with headphones there is no echo to cancel, so the voice goes as it is (the
      // browsers' gain control squeezes a voice's waveform too: Firefox's measurably).
      const clean = !headphones();
      const mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: clean, noiseSuppression: clean, autoGainControl: clean },
      });
      if (page.out) { // left the room while the browser asked
        for (const track of mic.getTracks()) track.stop();
        return;
      }
      page.mic = mic;
    } catch (err) {
      notice("The microphone is not available: " + err.message + ". Allow it for this page to speak.");
      return;
    }
    if (page.sender) await page.sender.replaceTrack(page.mic.getAudioTracks()[0]);
  } else if (!wanted && page.mic) {
    for (const track of page.mic.getTracks()) track.stop();
    page.mic = null;
    if (page.sender) await page.sender.replaceTrack(null);
  }
  if (page.mic) for (const track of page.mic.getAudioTracks()) track.enabled = !me.muted;
}

const HEADPHONES_KEY = "p2pspaces.headphones";

function headphones() {
  return localStorage.getItem(HEADPHONES_KEY) === "1";
}

function headphonesToggle(me) {
  const label = document.createElement("label");
  label.className = "check";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = "headphones";
  box.checked = headphones();
  box.addEventListener("change", async () => {
    localStorage.setItem(HEADPHONES_KEY, box.checked ? "1" : "0");
    await followMic(me, false); // the old microphone stops (in turn, after any ask under way)
    await followMic(me, true);
  });
  label.append(box, document.createTextNode(" I wear headphones (clearer voice, no echo filter)"));
  return label;
}

function stopAudio() {
  if (page.mic) for (const track of page.mic.getTracks()) track.stop();
  page.mic = null;
  if (page.pc) page.pc.close();
  page.pc = null;
}

// The browser's certificate warning comes next: say first what it is, and the fingerprint to
// compare with the one on the serving laptop's screen.
function goSecure() {
  const welcome = page.welcome;
  if (!welcome || !welcome.https) return;
  const cert = (welcome.cert_sha256 || "").toUpperCase().match(/../g) || [];
  $("secure-note-fp").textContent = cert.join(":\u200b"); // lines break between pairs only
  $("secure-note").hidden = false;
  $("secure-note-go").focus();
}

function toSecurePage() {
  const https = page.welcome && page.welcome.https;
  if (!https) return;
  page.moving = true;
  location.href = handOver(https, !!page.me);
}

start().catch((err) => notice("This page could not start: " + err));
