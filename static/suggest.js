// Address suggestions while typing in the compose form's To, Cc and Bcc
// fields: asks /mail/suggest (same origin, the session cookie) for the
// part after the last comma and fills the shared <datalist> with the
// answers, each after what was typed before that comma, so a list of
// several recipients can be completed one by one. Text is put into the
// page only as option values (never as HTML). Without this script the
// list holds what the server filled in: the address book.
(function () {
  "use strict";
  var list = document.getElementById("address-suggestions");
  if (!list || !window.fetch) { return; }
  var original = Array.prototype.map.call(list.options, function (o) {
    return { value: o.value, label: o.textContent };
  });
  var timer = null;
  var asked = "";

  function show(head, items) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = head + item.value;
      option.textContent = item.label;
      list.appendChild(option);
    });
  }

  function split(text) {
    var cut = text.lastIndexOf(",");
    if (cut < 0) { return { head: "", tail: text.trim() }; }
    return { head: text.slice(0, cut + 1) + " ", tail: text.slice(cut + 1).trim() };
  }

  function lookUp(field) {
    var parts = split(field.value);
    if (parts.tail.length < 2) {
      show(parts.head, original);
      return;
    }
    var key = parts.head + "\u0000" + parts.tail;
    if (key === asked) { return; }
    asked = key;
    fetch("/mail/suggest?q=" + encodeURIComponent(parts.tail), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (reply) {
      return reply.ok ? reply.json() : [];
    }).then(function (found) {
      if (asked !== key || !Array.isArray(found)) { return; }
      show(parts.head, found.map(function (s) {
        return { value: String(s.value), label: String(s.address) };
      }));
    }).catch(function () { /* keep the list as it is */ });
  }

  ["to", "cc", "bcc"].forEach(function (id) {
    var field = document.getElementById(id);
    if (!field) { return; }
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { lookUp(field); }, 150);
    });
  });
})();
