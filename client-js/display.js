// Progressive enhancement for the "Display" form in the page header.
// Without JavaScript the form posts to /display and the server redirects back.
// With JavaScript we switch the look instantly and save the choice in the
// background; if saving fails we fall back to the ordinary form post.

const CLASS_FOR = { large_text: 'large-text', high_contrast: 'high-contrast' };
const LABEL_FOR = { large_text: 'Larger text', high_contrast: 'High contrast' };

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') || '' : '';
}

function setState(form, key, on) {
  document.documentElement.classList.toggle(CLASS_FOR[key], on);
  const button = form.querySelector(`button[name="toggle"][value="${key}"]`);
  if (button) button.setAttribute('aria-pressed', on ? 'true' : 'false');
}

function announce(text) {
  const region = document.querySelector('.flash-region[role="status"]');
  if (!region) return;
  let p = region.querySelector('.flash');
  if (!p) {
    p = document.createElement('p');
    p.className = 'flash';
    region.appendChild(p);
  }
  p.textContent = text;
}

function fallbackSubmit(form, key) {
  form.dataset.enhanced = 'off';
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'toggle';
  input.value = key;
  form.appendChild(input);
  form.submit();
}

async function save(form, key, wanted) {
  const body = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string') body.append(name, value);
  }
  body.set('toggle', key);
  const response = await fetch(form.action, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
    body,
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  // If the server tells us the saved state, trust it over our guess.
  const type = response.headers.get('content-type') || '';
  if (type.includes('application/json')) {
    const data = await response.json().catch(() => null);
    if (data && typeof data === 'object') {
      for (const k of Object.keys(CLASS_FOR)) {
        if (typeof data[k] === 'boolean') setState(form, k, data[k]);
      }
      if (typeof data[key] === 'boolean') wanted = data[key];
    }
  }
  return wanted;
}

export function enhance(form) {
  if (!form || !window.fetch || !window.URLSearchParams) return;
  let busy = false;
  form.addEventListener('submit', async (event) => {
    if (form.dataset.enhanced === 'off') return;
    const button = event.submitter;
    if (!button || button.name !== 'toggle' || !(button.value in CLASS_FOR)) return;
    event.preventDefault();
    if (busy) return;
    busy = true;
    const key = button.value;
    const wanted = button.getAttribute('aria-pressed') !== 'true';
    setState(form, key, wanted);
    try {
      const saved = await save(form, key, wanted);
      announce(`${LABEL_FOR[key]} is now ${saved ? 'on' : 'off'}.`);
    } catch (_) {
      setState(form, key, !wanted);
      fallbackSubmit(form, key);
    } finally {
      busy = false;
    }
  });
}

if (typeof document !== 'undefined') {
  enhance(document.querySelector('form.display-form'));
}

// The phone header's Menu (a <details>): Escape closes it and puts the focus back on the
// Menu button, and a tap outside it closes it, as people expect of a menu.
function enhanceMenu(menu) {
  if (!menu) return;
  const summary = menu.querySelector('summary');
  menu.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && menu.open) {
      menu.open = false;
      if (summary) summary.focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
}

if (typeof document !== 'undefined') {
  enhanceMenu(document.querySelector('[data-site-menu]'));
}
