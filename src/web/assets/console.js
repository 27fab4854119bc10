// Fill the CSR box from a chosen file (the form also takes a pasted CSR without this script).
document.addEventListener("DOMContentLoaded", function () {
  var file = document.getElementById("csr-file");
  var box = document.getElementById("csr");
  if (!file || !box) return;
  file.hidden = false;
  file.addEventListener("change", function () {
    if (!file.files.length) return;
    var reader = new FileReader();
    reader.onload = function () { box.value = reader.result; };
    reader.readAsText(file.files[0]);
  });
});
