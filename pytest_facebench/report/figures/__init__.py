"""Building blocks of the report's figures (`report.plots` decides what each task shows):

- `base`: the figure itself: style, size and margins in inches, panels, saving in several formats
  (`encode`), and `fit_titles` (titles wrapped and the figure grown so no title is clipped);
- `labels`: what the axes say: distance names, metric quantities, chance levels, the gallery size;
- `draw`: drawing on one axes: bars, grouped bars, chance lines, ROC curves with bootstrap bands,
  histograms, scatter, RDMs, and the overview heatmap coloured by metric direction;
- `references`: lines to compare against: the human value, published references, the noise ceiling;
- `cell`: the pytest-html figure of one model × task cell.
"""
