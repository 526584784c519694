// The widget script: defines <gridlease-price>. Load it as a classic script,
// <script src="https://api.gridlease.example/widget.js" async></script>; by default the widget
// reads from the origin the script came from (override with the `api` attribute).
import { definePriceElement } from './price-element.ts';

/**
 * The origin this script was loaded from. `document.currentScript` is only set while a classic
 * script first runs, so it is read here, at load; a module script (where it is null) is found
 * by its URL instead.
 */
function scriptOrigin(): string {
  const current = document.currentScript as HTMLScriptElement | null;
  const src = current?.src || document.querySelector<HTMLScriptElement>('script[src*="/widget.js"],script[src*="/widget/"]')?.src;
  try {
    return new URL(src || location.href).origin;
  } catch {
    return location.origin;
  }
}

definePriceElement(scriptOrigin());
