<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>@yield('title') · Laravel test app</title></head>
<body>
@yield('body')
</body>
</html>
