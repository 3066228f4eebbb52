// The upload page (/upload/): each chosen or dropped file is sent with tus-js-client to /api/tus/
// (the session's login and its CSRF token), with a progress bar, pause/resume, and a link to the
// media once it is READY. tus-js-client remembers unfinished uploads in localStorage, so the same
// file chosen again after a reload resumes; a dropped connection is retried, and while the browser
// is offline the upload waits for the network to come back.
(function () {
  "use strict";
  const config = window.MEDIASTORE_UPLOAD;
  const list = document.getElementById("uploads");
  const value = (id) => document.getElementById(id).value.trim();

  function metadataFor(file, single) {
    const entries = {pid_type: value("pid_type"), store: value("store"), filename: file.name};
    if (file.type) entries.filetype = file.type;
    const pid = single && value("pid") ? value("pid") : (document.getElementById("pid_from_name").checked ? file.name : "");
    if (pid) entries.pid = pid;
    const tags = value("tags").split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) entries.tags = JSON.stringify(tags);
    const metadata = value("metadata");
    if (metadata && metadata !== "{}") entries.metadata = metadata;
    return entries;
  }

  function row(file) {
    const div = document.createElement("div");
    div.className = "file";
    div.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress>' +
      '<span class="percent">0%</span> <button type="button" class="toggle">Pause</button>' +
      '<span class="state"></span>';
    div.querySelector(".name").textContent = file.name;
    list.appendChild(div);
    return div;
  }

  function send(file, single) {
    const div = row(file);
    const bar = div.querySelector("progress");
    const percent = div.querySelector(".percent");
    const state = div.querySelector(".state");
    const toggle = div.querySelector(".toggle");
    let running = true;
    let media = "";
    const upload = new tus.Upload(file, {
      endpoint: "/api/tus/",
      chunkSize: config.chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      metadata: metadataFor(file, single),
      headers: {"X-CSRFToken": config.csrf},
      removeFingerprintOnSuccess: true,
      onAfterResponse: function (req, res) {
        media = res.getHeader("Media-Location") || media;
      },
      onProgress: function (sent, total) {
        const share = total ? Math.floor((sent / total) * 100) : 0;
        bar.value = share;
        percent.textContent = share + "%";
        state.textContent = "";
      },
      onSuccess: function () {
        bar.value = 100;
        percent.textContent = "100%";
        toggle.remove();
        const pid = decodeURIComponent(media.replace(/^\/api\/media\//, ""));
        state.innerHTML = 'READY: <a class="media"></a>';
        const link = state.querySelector("a");
        link.textContent = pid;
        link.href = "/admin/media/media/?q=" + encodeURIComponent(pid);
        div.classList.add("done");
      },
      onError: function (error) {
        if (!navigator.onLine) {  // tus-js-client does not retry while offline: wait for the network
          state.textContent = "offline: waiting for the network";
          window.addEventListener("online", function () { if (running) upload.start(); }, {once: true});
          return;
        }
        state.className = "state error";
        const body = error.originalResponse ? error.originalResponse.getBody() : "";
        let detail = body;
        try { detail = JSON.parse(body).detail; } catch (e) { /* not JSON */ }
        if (Array.isArray(detail)) detail = detail.map((d) => d.error || d.msg).join("; ");
        state.textContent = "failed: " + (detail || error.message);
        toggle.textContent = "Retry";
        running = false;
      },
    });
    toggle.addEventListener("click", function () {
      if (running) {
        upload.abort();
        running = false;
        toggle.textContent = "Resume";
        state.textContent = "paused";
      } else {
        running = true;
        toggle.textContent = "Pause";
        state.className = "state";
        state.textContent = "";
        upload.start();
      }
    });
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        state.textContent = "resuming";
      }
      upload.start();
    });
  }

  function sendAll(files) {
    const chosen = Array.from(files);
    chosen.forEach((file) => send(file, chosen.length === 1));
  }

  const input = document.getElementById("files");
  input.addEventListener("change", function () { sendAll(input.files); input.value = ""; });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    sendAll(e.dataTransfer.files);
  });
})();
