// A WebSocket to one conversation that reconnects by itself with backoff.
//
// The server keeps generating while no socket is connected and sends a snapshot of the
// partial answer on (re)connect, so a dropped socket only needs a new one, not a resend.
// Exposes window.ConversationSocket.
(function () {
  "use strict";

  const BASE_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;

  class ConversationSocket {
    /**
     * @param {string} url ws:// or wss:// address of /ws/c/<id>/
     * @param {{onEvent: Function, onOpen?: Function, onStatus?: Function}} handlers
     *   onEvent(event) for each JSON frame; onOpen(isReconnect); onStatus("connecting" |
     *   "open" | "reconnecting" | "closed").
     */
    constructor(url, handlers) {
      this.url = url;
      this.handlers = handlers;
      this.socket = null;
      this.queue = []; // Frames sent while disconnected go out on the next open.
      this.attempt = 0;
      this.everOpened = false;
      this.closedByUs = false;
      this.retryTimer = null;
      this.status = "closed";

      this.reconnectNow = this.reconnectNow.bind(this);
      window.addEventListener("online", this.reconnectNow);
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }

    static urlFor(conversationId) {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${window.location.host}/ws/c/${encodeURIComponent(conversationId)}/`;
    }

    connect() {
      this.closedByUs = false;
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.setStatus(this.everOpened ? "reconnecting" : "connecting");

      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
        this.scheduleRetry();
        return;
      }
      this.socket = socket;

      socket.addEventListener("open", () => {
        if (socket !== this.socket) return;
        const isReconnect = this.everOpened;
        this.everOpened = true;
        this.attempt = 0;
        this.setStatus("open");
        const pending = this.queue.splice(0);
        for (const frame of pending) socket.send(frame);
        if (this.handlers.onOpen) this.handlers.onOpen(isReconnect);
      });

      socket.addEventListener("message", (message) => {
        if (socket !== this.socket) return;
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (error) {
          return; // Not ours to interpret.
        }
        if (event && typeof event.type === "string") this.handlers.onEvent(event);
      });

      socket.addEventListener("close", () => {
        if (socket !== this.socket) return;
        this.socket = null;
        if (this.closedByUs) {
          this.setStatus("closed");
        } else {
          this.scheduleRetry();
        }
      });
      // "error" is always followed by "close": retrying is handled there.
    }

    scheduleRetry() {
      this.setStatus(this.everOpened ? "reconnecting" : "connecting");
      const exponential = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
      const jitter = 0.75 + Math.random() * 0.5; // Spread reconnects after a server restart.
      this.attempt += 1;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), exponential * jitter);
    }

    // Skip the remaining backoff (the network came back, the tab became visible).
    reconnectNow() {
      if (this.closedByUs || this.socket || this.retryTimer === null) return;
      this.attempt = 0;
      this.connect();
    }

    get isOpen() {
      return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
    }

    /** Send a JSON frame now, or queue it for the next open. */
    send(payload) {
      const frame = JSON.stringify(payload);
      if (this.isOpen) {
        this.socket.send(frame);
        return true;
      }
      this.queue.push(frame);
      return false;
    }

    /** Forget queued frames of one type (for example a stop that is no longer wanted). */
    dropQueued(type) {
      this.queue = this.queue.filter((frame) => JSON.parse(frame).type !== type);
    }

    close() {
      this.closedByUs = true;
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.socket) this.socket.close(1000);
      this.socket = null;
      this.setStatus("closed");
    }

    setStatus(status) {
      if (status === this.status) return;
      this.status = status;
      if (this.handlers.onStatus) this.handlers.onStatus(status);
    }
  }

  window.ConversationSocket = ConversationSocket;
})();
