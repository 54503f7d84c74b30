"""Root conftest: puts the repo root on sys.path (so grid factories like `models.vgg16:Vgg16`
import) and enables pytester for the plugin's own tests."""

pytest_plugins = ["pytester"]
