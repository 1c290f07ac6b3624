"""The live app's 3D neuron (src/neurospike/app/static/neuron3d.js) in Debian's chromium, driven by playwright: a
spike's particle runs down the axon and disappears after the travel time (at most 200 are kept), the soma's colour
and its pixels brighten with the voltage, a mouse drag rotates the cell and a double-click resets the view, the
canvas follows resizes and devicePixelRatio, the shape is the same on every load, frames keep coming with 200
particles, and nothing logs an error."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # chromium: `make check` leaves it out, `make test` runs it

SCRIPT = Path(__file__).resolve().parents[1] / "src" / "neurospike" / "app" / "static" / "neuron3d.js"
PAGE = "<body style='margin:0;background:#000'><canvas id='c' style='width:400px;height:300px'></canvas></body>"


@pytest.fixture
def errors():
    return []


@pytest.fixture
def open_page(browser, errors):
    """open_page(dpr=1, options=...) -> a page with the script loaded and `window.n` a Neuron3D on canvas #c."""
    contexts = []

    def open_(dpr=1, options="{background: '#0b1020', autoRotate: false}"):
        context = browser.new_context(viewport={"width": 600, "height": 400}, device_scale_factor=dpr)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.set_content(PAGE)
        page.add_script_tag(path=str(SCRIPT))
        page.evaluate(f"() => {{ window.n = new Neuron3D(document.getElementById('c'), {options}); }}")
        wait_frames(page)
        return page

    yield open_
    for context in contexts:
        context.close()


def wait_frames(page, count=2):
    """Wait until the neuron has drawn `count` more frames."""
    start = page.evaluate("n.stats.frames")
    page.wait_for_function(f"n.stats.frames >= {start + count}", timeout=5000)


def luminance(rgb):
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def parse_rgb(css):
    assert css.startswith("rgb(") and css.endswith(")"), css
    return [int(x) for x in css[4:-1].split(",")]


# The canvas's pixels: a snapshot in the page, and how many pixels differ from it now.
SNAPSHOT = """() => { const c = document.getElementById('c');
  window.snap = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; }"""
CHANGED = """() => { const c = document.getElementById('c');
  const now = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
  for (let i = 0; i < now.length; i += 4) {
    if (Math.abs(now[i] - snap[i]) + Math.abs(now[i + 1] - snap[i + 1]) + Math.abs(now[i + 2] - snap[i + 2]) > 24) k++;
  }
  return k / (now.length / 4); }"""
SOMA_PIXEL = """() => { const c = document.getElementById('c'), p = n.projectPoint(0, 0, 0), r = devicePixelRatio;
  const d = c.getContext('2d').getImageData(Math.round(p.x * r), Math.round(p.y * r), 1, 1).data;
  return [d[0], d[1], d[2]]; }"""


def test_spike_particle_travels_then_disappears_and_at_most_200_are_kept(open_page, errors):
    page = open_page()
    assert page.evaluate("n.particles()") == []
    first = page.evaluate("() => { window.t0 = performance.now(); n.spike(); return n.particles(); }")
    assert len(first) == 1 and 0 <= first[0] < 0.2
    page.wait_for_function("n.particles().length === 1 && n.particles()[0] > 0.3", timeout=2000)
    middle = page.evaluate("n.particles()")
    assert len(middle) == 1 and first[0] < middle[0] < 1
    further = min(middle[0] + 0.1, 0.99)  # progress stays at 1 while the particle fades
    page.wait_for_function(f"n.particles().length === 1 && n.particles()[0] > {further}", timeout=2000)
    page.wait_for_function("n.particles().length === 0", timeout=3000)
    elapsed = page.evaluate("performance.now() - t0")
    assert 800 <= elapsed < 2500, elapsed  # the default travel time is 800 ms, then it fades

    counts = page.evaluate("() => { for (let i = 0; i < 300; i++) n.spike(); const p = n.particles();"
                           " return [p.length, Math.min(...p), Math.max(...p)]; }")
    assert counts[0] == 200 and 0 <= counts[1] <= counts[2] <= 1
    page.evaluate("n.reset()")
    assert page.evaluate("n.particles().length") == 0
    wait_frames(page)
    assert errors == []


def test_voltage_sets_soma_colour_and_its_pixels_monotonically(open_page, errors):
    page = open_page()
    colours, pixels = [], []
    for v in [-90, -80, -60, -40, -20, 0, 20, 40, 55]:
        colours.append(parse_rgb(page.evaluate(f"() => {{ n.setVoltage({v}, -80, 40); return n.somaColor(); }}")))
        wait_frames(page)
        pixels.append(page.evaluate(SOMA_PIXEL))
    assert colours[0] == colours[1] and colours[-1] == colours[-2]  # clamped below low and above high
    inner = [luminance(c) for c in colours[1:-1]]
    assert all(a < b for a, b in zip(inner, inner[1:])), colours
    low, high = colours[1], colours[-2]
    assert low[2] > low[0] and low[2] > low[1] and luminance(low) < 80  # cool dark blue
    assert min(high) > 180 and high[0] >= high[2]  # bright yellow/white
    lit = [luminance(p) for p in pixels[1:-1]]
    assert all(a < b for a, b in zip(lit, lit[1:])), pixels
    assert lit[-1] - lit[0] > 100, pixels
    # the pixel is the soma's colour, lit (never darker); below the glow threshold it stays close to it
    for colour, pixel in zip(colours, pixels):
        assert all(p >= c - 8 for c, p in zip(colour, pixel)), (colour, pixel)
    for colour, pixel in zip(colours[1:4], pixels[1:4]):
        assert max(abs(c - p) for c, p in zip(colour, pixel)) < 60, (colour, pixel)
    assert errors == []


def test_drag_rotates_and_double_click_resets(open_page, errors):
    page = open_page()
    start = page.evaluate("n.rotation")
    page.evaluate(SNAPSHOT)
    box = page.locator("#c").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 30, steps=5)
    page.mouse.up()
    turned = page.evaluate("n.rotation")
    assert turned["yaw"] == pytest.approx(start["yaw"] + 0.6, abs=0.05)
    assert turned["pitch"] == pytest.approx(start["pitch"] + 0.3, abs=0.05)
    wait_frames(page)
    assert page.evaluate(CHANGED) > 0.01  # the drawn image differs after the rotation

    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 400, steps=4)
    page.mouse.up()
    assert page.evaluate("n.rotation.pitch") == pytest.approx(1.4)  # pitch is clamped

    page.mouse.dblclick(x, y)
    assert page.evaluate("n.rotation") == pytest.approx(start)
    wait_frames(page)
    assert page.evaluate(CHANGED) < 0.001  # back to the very same picture
    assert errors == []


def test_auto_rotation_resize_device_pixel_ratio_and_same_shape_every_load(open_page, errors):
    page = open_page(options="{}")  # auto-rotation on by default
    yaw = page.evaluate("n.rotation.yaw")
    page.wait_for_function(f"n.rotation.yaw > {yaw + 0.01}", timeout=3000)
    assert page.evaluate("[document.getElementById('c').width, document.getElementById('c').height]") == [400, 300]
    page.evaluate("document.getElementById('c').style.width = '320px'")
    page.wait_for_function("document.getElementById('c').width === 320", timeout=3000)
    page.evaluate("n.destroy()")
    frames = page.evaluate("n.stats.frames")
    page.wait_for_timeout(150)
    assert page.evaluate("n.stats.frames") == frames  # destroy stops the loop

    sharp = open_page(dpr=2)
    assert sharp.evaluate("[document.getElementById('c').width, document.getElementById('c').height]") == [800, 600]
    # a second neuron in another page draws the very same cell
    sharp.evaluate("() => { n.setRotation(0.3, -0.2); }")
    other = open_page(dpr=2)
    other.evaluate("() => { n.setRotation(0.3, -0.2); }")
    wait_frames(sharp)
    wait_frames(other)
    image = "() => Array.from(document.getElementById('c').getContext('2d').getImageData(0, 0, 800, 600).data" \
            ".filter((_, i) => i % 97 === 0))"
    first, second = sharp.evaluate(image), other.evaluate(image)
    assert first == second and len(set(first)) > 10
    assert errors == []


def test_frames_keep_coming_with_200_particles(open_page, errors):
    page = open_page()
    assert page.evaluate("() => { for (let i = 0; i < 250; i++) n.spike(); return n.particles().length; }") == 200
    frames = page.evaluate("n.stats.frames")
    costs = page.evaluate("""() => new Promise(resolve => { const costs = [];
      const step = () => { costs.push(n.stats.lastFrameMs); if (costs.length < 30) requestAnimationFrame(step);
        else resolve(costs); }; requestAnimationFrame(step); })""")
    assert page.evaluate("n.stats.frames") >= frames + 10  # 30 animation frames; drawn at most maxFps = 30 a second
    print(f"\nneuron3d frame cost with 200 particles: last {page.evaluate('n.stats.lastFrameMs'):.2f} ms, "
          f"mean {sum(costs) / len(costs):.2f} ms, max {max(costs):.2f} ms over {len(costs)} frames")
    assert errors == []


def test_no_console_or_page_errors_and_the_check_would_see_one(open_page, errors):
    page = open_page(options="{}")
    page.evaluate("() => { n.setVoltage(-55, -80, 40); n.spike(); n.spike(); n.setRotation(1, 0.5); }")
    box = page.locator("#c").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 60, steps=3)
    page.mouse.up()
    page.mouse.dblclick(box["x"] + 100, box["y"] + 100)
    page.evaluate("document.getElementById('c').style.height = '200px'")
    wait_frames(page, 5)
    page.evaluate("() => { n.setVoltage(NaN); n.setVoltage(0, 10, 10); n.reset(); n.destroy(); n.destroy(); }")
    assert errors == []
    page.evaluate("() => { setTimeout(() => { throw new Error('deliberate'); }); console.error('deliberate'); }")
    page.wait_for_function("new Promise(r => setTimeout(() => r(true), 50))")
    assert any("deliberate" in e for e in errors if e.startswith("pageerror")), errors
    assert any("deliberate" in e for e in errors if e.startswith("console.error")), errors
