() => {
  // Predict tab: Enter predicts, Shift+Enter starts a new line (Gradio's multi-line box does the opposite).
  // Runs in the capture phase, before the box's own handler; leaves Enter alone while an IME composes.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return;
    const box = event.target.closest?.("#predict-text, #predict-text-b") && event.target;
    if (!box) return;
    event.stopPropagation();
    event.preventDefault();
    if (event.shiftKey) {
      box.setRangeText("\n", box.selectionStart, box.selectionEnd, "end");
      box.dispatchEvent(new Event("input", { bubbles: true }));
    } else {
      document.querySelector("#predict-button")?.click();
    }
  }, true);
}
