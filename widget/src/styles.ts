// The widget's stylesheet, scoped by its shadow root. Host-page rules cannot reach inside; the
// few that apply to the host element itself are overridden with !important, which wins over the
// page's !important for a shadow host. Colours meet WCAG AA (4.5:1) in both themes.
export const CSS = `
:host{display:inline-block!important;visibility:visible!important;opacity:1!important;vertical-align:top;min-width:15rem}
:host([hidden]){display:none!important}
.w{--bg:#fff;--fg:#111827;--mute:#4b5563;--line:#d1d5db;--up:#047857;--down:#b91c1c;--spark:#1d4ed8;
box-sizing:border-box;display:block;height:100%;padding:.6rem .8rem;border:1px solid var(--line);border-radius:.5rem;
background:var(--bg);color:var(--fg);font:400 14px/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;text-align:left;
letter-spacing:normal;text-transform:none;font-variant-numeric:tabular-nums}
:host([theme=dark]) .w{--bg:#111827;--fg:#f9fafb;--mute:#d1d5db;--line:#374151;--up:#34d399;--down:#fca5a5;--spark:#93c5fd}
@media (prefers-color-scheme:dark){:host(:not([theme=light])) .w{--bg:#111827;--fg:#f9fafb;--mute:#d1d5db;--line:#374151;--up:#34d399;--down:#fca5a5;--spark:#93c5fd}}
*{display:revert;color:inherit}
.top{display:flex;justify-content:space-between;gap:.5rem;font-weight:600;margin:0 0 .3rem}
.top span:last-child{color:var(--mute);font-weight:400}
.vals{display:flex;gap:1rem;margin:0}
.cell{display:flex;flex-direction:column}
.lbl{color:var(--mute);font-size:12px}
.v{font-size:16px;font-weight:600;white-space:nowrap}
.up{color:var(--up)}.down{color:var(--down)}
.up::before{content:"▲ ";content:"▲ "/""}.down::before{content:"▼ ";content:"▼ "/""}
.spark{display:block;width:100%;height:28px;margin-top:.3rem}
.spark path{fill:none;stroke:var(--spark);stroke-width:1.5;vector-effect:non-scaling-stroke}
.off{display:none;margin:.3rem 0 0;color:var(--mute)}
.w[data-state=unavailable] .off,.w[data-state=unknown] .off{display:block}
.w[data-state=unavailable] .vals,.w[data-state=unavailable] .spark,.w[data-state=unknown] .vals,.w[data-state=unknown] .spark{display:none}
:host([compact]) .w{display:flex;align-items:center;gap:.75rem;padding:.35rem .6rem}
:host([compact]) .top{flex-direction:column;gap:0;margin:0;font-size:12px;white-space:nowrap}
:host([compact]) .lbl{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
:host([compact]) .vals{gap:.6rem}
:host([compact]) .v{font-size:14px}
:host([compact]) .spark{width:64px;height:22px;margin:0;flex:none}
:host([compact]) .off{margin:0}
`;
