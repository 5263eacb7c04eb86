"""The HTML of a run report: one page, no scripts and no external resources, with the
headline figures in a table, the timeline events listed, and the PNGs beside it linked
by their file names (the page and its pictures are written to the same directory).
"""
import html

STYLE = """body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 0 0 1.5em 0; }
figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }"""


def _table(header, rows):
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join("<th>%s</th>" % html.escape(h) for h in header) + "</tr>")
    for row in rows:
        cells = ["<th>%s</th>" % html.escape(row[0])] + ["<td>%s</td>" % html.escape(c) for c in row[1:]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figures(pictures):
    return "\n".join('<figure><img src="%s" alt="%s"><figcaption>%s</figcaption></figure>'
                     % (html.escape(name, quote=True), html.escape(caption, quote=True), html.escape(caption))
                     for name, caption in pictures)


def _page(title, body):
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>%s</title>\n'
            "<style>\n%s\n</style>\n</head>\n<body>\n<h1>%s</h1>\n%s\n</body>\n</html>\n"
            % (html.escape(title), STYLE, html.escape(title), body))


def run_page(run, pictures):
    """The report of one run."""
    events = run.events()
    parts = ["<h2>Headline</h2>", _table(None, run.headline())]
    parts.append("<h2>Timeline</h2>")
    if events:
        parts.append(_table(["step", "event"], [(str(step), label) for step, _, label in events]))
    else:
        parts.append("<p>No checkpoint, rollback or placement change in this run.</p>")
    parts += ["<h2>Pictures</h2>", _figures(pictures)]
    return _page("Switchyard run %s" % run.name, "\n".join(parts))


def comparison_page(runs, pictures):
    """Several runs side by side."""
    headlines = [run.headline() for run in runs]
    fields = []
    for headline in headlines:
        fields += [name for name, _ in headline if name not in fields]
    rows = [[field] + [dict(h).get(field, "-") for h in headlines] for field in fields if field != "run"]
    parts = ["<h2>Headline</h2>", _table(["run"] + [run.name for run in runs], rows),
             "<h2>Pictures</h2>", _figures(pictures)]
    return _page("Switchyard runs compared: %s" % ", ".join(run.name for run in runs), "\n".join(parts))
