"""Quality scorecards and reports (issue 16), from the metrics in ClickHouse (quality_stream/metrics).

periods.window(period, end=None) -> (start, end, previous_start)      # whole days, UTC
build.report_data(client, where, period, end, title, tickets=None) -> figures (dict)
render.render_html(data) / render.render_pdf(data) -> str / bytes (matplotlib charts; reportlab PDF)
scorecards.scorecards(client, scope, by, start, end, departments) -> rows with dimensions and trend
store.ReportStore(engine): save / list / get / pdf / subscriptions
"""
