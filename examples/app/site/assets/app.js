document.getElementById("when").textContent += " Served by Mixpeek.";
