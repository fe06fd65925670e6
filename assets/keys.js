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
  // Monitor tab, Review panel (while an item is shown and no text box has the focus): 1-9 picks a label,
  // Enter saves, S skips.
  document.addEventListener("keydown", (event) => {
    if (event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!document.querySelector("#review-item [data-review-id]")?.offsetParent) return;
    if (event.target.closest?.("textarea, select, input:not([type=radio])")) return;  // typing stays typing
    const key = event.key.toLowerCase();
    const pick = /^[1-9]$/.test(key) && document.querySelectorAll("#review-label input[type=radio]")[key - 1];
    const button = pick || (key === "enter" && "#review-save") || (key === "s" && "#review-skip");
    if (!button) return;
    event.preventDefault();  // also keeps Enter from pressing a focused button
    (typeof button === "string" ? document.querySelector(button) : button)?.click();
  });
}
