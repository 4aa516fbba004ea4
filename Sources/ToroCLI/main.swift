import ToroTool
