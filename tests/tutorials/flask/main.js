// The Flask-SocketIO tutorial's CallScreen component, its logic unchanged
// outside React: refs are the two <video> elements, and the signaling server,
// username and room come from the page's query string.
const params = new URLSearchParams(location.search);
const localUsername = params.get("username");
const roomName = params.get("room");
const localVideoRef = { current: document.querySelector("#localStream") };
const remoteVideoRef = { current: document.querySelector("#remoteStream") };

const socket = io(params.get("server") || "http://localhost:9000", {
  autoConnect: false,
});

let pc; // For RTCPeerConnection Object

const sendData = (data) => {
  socket.emit("data", {
    username: localUsername,
    room: roomName,
    data: data,
  });
};

const startConnection = () => {
  navigator.mediaDevices
    .getUserMedia({
      audio: false,
      video: {
        height: 350,
        width: 350,
      },
    })
    .then((stream) => {
      console.log("Local Stream found");
      localVideoRef.current.srcObject = stream;
      socket.connect();
      socket.emit("join", { username: localUsername, room: roomName });
    })
    .catch((error) => {
      console.error("Stream not found: ", error);
    });
};

const onIceCandidate = (event) => {
  if (event.candidate) {
    console.log("Sending ICE candidate");
    sendData({
      type: "candidate",
      candidate: event.candidate,
    });
  }
};

const onTrack = (event) => {
  console.log("Adding remote track");
  remoteVideoRef.current.srcObject = event.streams[0];
};

const createPeerConnection = () => {
  try {
    pc = new RTCPeerConnection({});
    pc.onicecandidate = onIceCandidate;
    pc.ontrack = onTrack;
    const localStream = localVideoRef.current.srcObject;
    for (const track of localStream.getTracks()) {
      pc.addTrack(track, localStream);
    }
    console.log("PeerConnection created");
  } catch (error) {
    console.error("PeerConnection failed: ", error);
  }
};

const setAndSendLocalDescription = (sessionDescription) => {
  pc.setLocalDescription(sessionDescription);
  console.log("Local description set");
  sendData(sessionDescription);
};

const sendOffer = () => {
  console.log("Sending offer");
  pc.createOffer().then(setAndSendLocalDescription, (error) => {
    console.error("Send offer failed: ", error);
  });
};

const sendAnswer = () => {
  console.log("Sending answer");
  pc.createAnswer().then(setAndSendLocalDescription, (error) => {
    console.error("Send answer failed: ", error);
  });
};

const signalingDataHandler = (data) => {
  if (data.type === "offer") {
    createPeerConnection();
    pc.setRemoteDescription(new RTCSessionDescription(data));
    sendAnswer();
  } else if (data.type === "answer") {
    pc.setRemoteDescription(new RTCSessionDescription(data));
  } else if (data.type === "candidate") {
    pc.addIceCandidate(new RTCIceCandidate(data.candidate));
  } else {
    console.log("Unknown Data");
  }
};

socket.on("ready", () => {
  console.log("Ready to Connect!");
  createPeerConnection();
  sendOffer();
});

socket.on("data", (data) => {
  console.log("Data received: ", data);
  signalingDataHandler(data);
});

startConnection();
