// Read the verdict aloud with the browser's own speech synthesis (no network, no library).
// The page works without JavaScript; only this button needs it, so it starts hidden and is
// shown here only when the browser can actually speak.
(function () {
  "use strict";
  var button = document.getElementById("read-aloud");
  if (!button || !("speechSynthesis" in window) || typeof SpeechSynthesisUtterance !== "function") {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var utterance = new SpeechSynthesisUtterance(button.getAttribute("data-text") || "");
    utterance.lang = button.getAttribute("data-lang") || document.documentElement.lang;
    utterance.rate = 0.85; // a little slower than default: easier to follow for older listeners
    window.speechSynthesis.cancel();
    window.speechSynthesis.speak(utterance);
    button.setAttribute("data-spoken", "1");
  });
})();
