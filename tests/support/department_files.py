"""Files as departments send them: title rows, a header, totals and footers, GB18030, a workbook
whose data is on its second sheet."""

from __future__ import annotations

import io
from datetime import date

import openpyxl

HEADER = ["序号", "统一社会信用代码", "企业名称", "注册资本", "成立日期", "联系电话"]


def department_csv(rows: int = 30) -> bytes:
    lines = ["某市市场监督管理局企业登记情况表,,,,,", "填报单位：某区分局,,,,填报日期：2022年7月1日,", ",".join(HEADER)]
    for i in range(1, rows + 1):
        lines.append(f'{i},91370100MA{i:08d},企业{i}䶮堃,"1,000.00",2022/06/30,1380000{i:04d}')
    lines += ["合计,,,30000.00,,", "填报人：张三,,,,,", "注：金额单位为万元,,,,,"]
    return ("\r\n".join(lines) + "\r\n").encode("gb18030")


def department_xlsx() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "说明"
    ws.append(["本工作簿第二页为数据"])
    data = wb.create_sheet("企业名录")
    data.append(["某市企业登记情况表"])
    data.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    data.append(HEADER)
    for i in range(1, 11):
        data.append([i, f"91370100MA{i:08d}", f"企业{i}", 1000.5, date(2022, 6, 30), f"1380000{i:04d}"])
    data.append(["合 计", None, None, 10005, None, None])
    data.append(["填报单位：某区分局", None, None, "填报人：李四"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
