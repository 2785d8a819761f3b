"""Parses an SVG written by kiln (tools/svg_plot.h) with xml.etree, so a
malformed document fails here, and prints what FileCheck can check: the
title, each panel's curves (run, series, point count), markers and legend
labels, in document order.

usage: svg_summary.py FILE.svg
"""
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def main():
    root = ET.parse(sys.argv[1]).getroot()
    if root.tag != NS + "svg":
        sys.exit(f"{sys.argv[1]}: the root element is {root.tag}, not svg")
    print("svg", root.get("width"), "x", root.get("height"))
    print("title:", root.findtext(NS + "title"))
    for panel in root.iter(NS + "g"):
        if panel.get("class") != "panel":
            continue
        print("panel", panel.get("id"))
        for el in panel.iter():
            cls = el.get("class")
            if el.tag == NS + "polyline":
                n = len(el.get("points").split())
                print(f"  curve run={el.get('data-run')} "
                      f"series={el.get('data-series')} points={n}")
            elif cls == "marker":
                print(f"  marker run={el.get('data-run')} "
                      f"series={el.get('data-series')}")
            elif cls == "legend-label":
                print(f"  legend: {el.text}")
            elif cls == "xtick":
                print(f"  xtick {el.text}")


if __name__ == "__main__":
    main()
