/*
 * Ticket pages (portal and console): attach a file to a reply or a note.
 * The file is uploaded first (with the page's CSRF token, progress shown);
 * the form then carries only its id. Without JavaScript the field stays
 * hidden and the forms work as before, text only.
 */
(function () {
  "use strict";

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  Array.prototype.forEach.call(document.querySelectorAll(".attach-field"), function (field) {
    var form = field.closest("form");
    var input = field.querySelector("input[type=file]");
    var hidden = field.querySelector("input[name=attachment_id]");
    var status = field.querySelector(".upload-status");
    var submit = form.querySelector("button[type=submit]");
    var csrf = form.querySelector("input[name=csrf]").value;
    field.hidden = false;

    function upload(file) {
      hidden.value = "";
      submit.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", field.getAttribute("data-upload") + "?name=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) status.textContent = "Uploading " + file.name + ": " + Math.round(100 * e.loaded / e.total) + "%";
      };
      xhr.onerror = function () {
        submit.disabled = false;
        status.textContent = "Upload failed: check the connection and try again.";
      };
      xhr.onload = function () {
        submit.disabled = false;
        var reply = {};
        try { reply = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status !== 201) {
          input.value = "";
          status.textContent = "Not attached: " + ((reply.error && reply.error.message) || "the upload failed (" + xhr.status + ")");
          return;
        }
        hidden.value = reply.id;
        status.textContent = "Attached: " + reply.name + " (" + size(reply.size) + ")";
      };
      xhr.send(file);
    }

    input.addEventListener("change", function () { if (input.files[0]) upload(input.files[0]); });
    form.addEventListener("dragover", function (e) { e.preventDefault(); form.classList.add("dropping"); });
    form.addEventListener("dragleave", function () { form.classList.remove("dropping"); });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      form.classList.remove("dropping");
      var file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) upload(file);
    });
  });
})();
